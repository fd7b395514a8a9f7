package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/fixture"
)

// TestMain runs the real main when asked to, so a test can start this
// very binary as mcpgate and send it signals.
func TestMain(m *testing.M) {
	if os.Getenv("MCPGATE_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// output collects a process's stderr and lets a test wait for a line.
type output struct {
	mu    sync.Mutex
	text  strings.Builder
	lines chan struct{}
}

func (o *output) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		o.mu.Lock()
		o.text.WriteString(sc.Text() + "\n")
		o.mu.Unlock()
		select {
		case o.lines <- struct{}{}:
		default:
		}
	}
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.text.String()
}

// waitFor waits until the output matches re and returns the first group.
func (o *output) waitFor(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		if m := re.FindStringSubmatch(o.String()); m != nil {
			if len(m) > 1 {
				return m[1]
			}
			return m[0]
		}
		select {
		case <-o.lines:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no %q in:\n%s", re, o)
		}
	}
}

func initialize(t *testing.T, url string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSIGHUPReloads: `kill -HUP` on a running mcpgate reloads its config
// file instead of killing it: a server added to the file appears, an
// invalid file is refused while the old config keeps serving, and SIGTERM
// still stops it cleanly (audit finding 14).
func TestSIGHUPReloads(t *testing.T) {
	ms := fixture.NewServer(nil)
	up := httptest.NewServer(fixture.NewStreamableHandler(ms, nil))
	defer func() {
		up.Close()
		for ss := range ms.Sessions() {
			ss.Close()
		}
	}()
	dir := t.TempDir()
	path := filepath.Join(dir, "mcpgate.yaml")
	head := fmt.Sprintf("listen: 127.0.0.1:0\nstore: {sqlite: %q}\nservers:\n  - {name: open, auth: none, upstream: {url: %q}}\n", filepath.Join(dir, "db"), up.URL+"/mcp")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(head)

	cmd := exec.Command(os.Args[0], "serve", "--config", path)
	cmd.Env = append(os.Environ(), "MCPGATE_TEST_RUN_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := &output{lines: make(chan struct{}, 1)}
	readDone := make(chan struct{})
	go func() { out.read(stderr); close(readDone) }()
	exited := false
	defer func() {
		if !exited {
			_ = cmd.Process.Kill()
			<-readDone
			_ = cmd.Wait()
		}
	}()
	base := "http://" + out.waitFor(t, regexp.MustCompile(`mcpgate listening on http://(\S+)`))
	if got := initialize(t, base+"/mcp/extra"); got != http.StatusNotFound {
		t.Fatalf("before the reload /mcp/extra answers %d", got)
	}

	write(head + fmt.Sprintf("  - {name: extra, auth: none, upstream: {url: %q}}\n", up.URL+"/mcp"))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, regexp.MustCompile(`config reloaded`))
	if got := initialize(t, base+"/mcp/extra"); got != http.StatusOK {
		t.Errorf("after SIGHUP /mcp/extra answers %d, want 200", got)
	}

	write("servers: [{name: broken, no_such_key: 1}]\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, regexp.MustCompile(`config reload refused`))
	for _, p := range []string{"/mcp/open", "/mcp/extra"} {
		if got := initialize(t, base+p); got != http.StatusOK {
			t.Errorf("after an invalid reload %s answers %d, want 200", p, got)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-readDone
	err = cmd.Wait()
	exited = true
	if err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, out)
	}
}
