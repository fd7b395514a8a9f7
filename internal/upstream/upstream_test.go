package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type collector struct {
	mu   sync.Mutex
	msgs []*mcpwire.Message
}

func (c *collector) handle(m *mcpwire.Message, _ json.RawMessage) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func (c *collector) wait(t *testing.T, n int) []*mcpwire.Message {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		if len(c.msgs) >= n {
			out := c.msgs
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("got %d messages, want %d", len(c.msgs), n)
	return nil
}

// syncBuffer is a log sink safe for the link's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestStdioEchoAndStderr: messages go through a real process (cat echoes
// each line back) and stderr lands in the log.
func TestStdioEchoAndStderr(t *testing.T) {
	var c collector
	var logs syncBuffer
	l, err := StartStdio(StdioOptions{Name: "cat", Command: []string{"sh", "-c", "echo started >&2; exec cat"},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, c.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Send(context.Background(), mcpwire.Request(json.RawMessage("7"), "ping", nil)); err != nil {
		t.Fatal(err)
	}
	msgs := c.wait(t, 1)
	if msgs[0].Method != "ping" || string(msgs[0].ID) != "7" {
		t.Errorf("echoed %+v", msgs[0])
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "line=started") {
		if time.Now().After(deadline) {
			t.Fatalf("stderr not logged: %s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStdioRestartBudget: a server that keeps crashing is restarted with
// backoff a bounded number of times, then the link fails for good.
func TestStdioRestartBudget(t *testing.T) {
	var exits, restarts int
	var mu sync.Mutex
	l, err := StartStdio(StdioOptions{Name: "crashy", Command: []string{"sh", "-c", "exit 3"},
		MaxRestarts: 2, Backoff: 10 * time.Millisecond,
		OnExit:    func(error) { mu.Lock(); exits++; mu.Unlock() },
		OnRestart: func() { mu.Lock(); restarts++; mu.Unlock() },
	}, func(*mcpwire.Message, json.RawMessage) {})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	select {
	case <-l.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("link never gave up")
	}
	mu.Lock()
	defer mu.Unlock()
	if exits != 3 || restarts != 2 {
		t.Errorf("exits=%d restarts=%d, want 3 and 2", exits, restarts)
	}
	if err := l.Send(context.Background(), mcpwire.Notification("x", nil)); err == nil {
		t.Error("Send on a failed link succeeded")
	}
}

// TestStdioCloseKillsGroup: Close stops the server and whatever it started,
// even a server that ignores stdin closing and SIGTERM.
func TestStdioCloseKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := dir + "/child.pid"
	script := fmt.Sprintf("trap '' TERM; sleep 600 & echo $! > %s; while true; do sleep 1; done", pidFile)
	l, err := StartStdio(StdioOptions{Name: "stubborn", Command: []string{"sh", "-c", script}, StopTimeout: 100 * time.Millisecond},
		func(*mcpwire.Message, json.RawMessage) {})
	if err != nil {
		t.Fatal(err)
	}
	var child int
	deadline := time.Now().Add(5 * time.Second)
	for child == 0 && time.Now().Before(deadline) {
		b, _ := os.ReadFile(pidFile)
		child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(10 * time.Millisecond)
	}
	parent := l.Pid()
	if child == 0 || parent == 0 {
		t.Fatalf("pids: parent %d child %d", parent, child)
	}
	l.Close()
	// A killed process may linger a moment in /proc (exiting, or a zombie
	// until its new parent reaps it): wait, bounded, for it to be gone.
	for _, pid := range []int{parent, child} {
		deadline := time.Now().Add(3 * time.Second)
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Errorf("process %d survived Close", pid)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestSSEEndpointMustStayOnOrigin: a legacy SSE server may not send the
// gateway's messages to another host.
func TestSSEEndpointMustStayOnOrigin(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: endpoint\ndata: http://evil.example.com/messages\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	_, err := DialSSE(context.Background(), SSEOptions{Name: "legacy", URL: srv.URL + "/sse", ConnectTimeout: 2 * time.Second},
		func(*mcpwire.Message, json.RawMessage) {})
	if err == nil || !strings.Contains(err.Error(), "another origin") {
		t.Fatalf("err = %v, want an origin refusal", err)
	}
}

// TestHTTPResumesCutStream: when an upstream cuts an SSE response before
// the answer, the link resumes with Last-Event-ID and gets it.
func TestHTTPResumesCutStream(t *testing.T) {
	var gotLastID string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		if r.Method == http.MethodPost {
			fmt.Fprint(w, "id: s_0\nretry: 10\ndata: \n\n")
			return // cut before the answer
		}
		gotLastID = r.Header.Get("Last-Event-ID")
		fmt.Fprint(w, "id: s_1\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"ok\":true}}\n\n")
	}))
	defer srv.Close()
	var c collector
	l := NewHTTP(HTTPOptions{Name: "cutter", URL: srv.URL}, c.handle)
	defer l.Close()
	if err := l.Send(context.Background(), mcpwire.Request(json.RawMessage("1"), "tools/call", nil)); err != nil {
		t.Fatal(err)
	}
	msgs := c.wait(t, 1)
	if !msgs[0].IsResponse() || gotLastID != "s_0" {
		t.Errorf("got %+v after resuming from %q", msgs[0], gotLastID)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	return !strings.Contains(string(stat), ") Z ") && !strings.Contains(string(stat), ") X ")
}

// TestStdioMinimalEnvironment: a stdio upstream sees only the variables
// named in InheritedEnv and in its env map, never the gateway's secrets
// (audit finding 10).
func TestStdioMinimalEnvironment(t *testing.T) {
	t.Setenv("MCPGATE_VAULT_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	t.Setenv("MADE_UP_CLIENT_SECRET", "s3cret-from-gateway-env")
	t.Setenv("NAMED_BY_CONFIG", "passed-on-purpose")
	var c collector
	// The child prints its environment as one JSON-RPC notification.
	script := `printf '{"jsonrpc":"2.0","method":"env","params":{"env":"%s"}}\n' "$(env | tr '\n' ' ' | tr -d '"\\')"; exec cat`
	l, err := StartStdio(StdioOptions{Name: "env", Command: []string{"sh", "-c", script},
		Env: map[string]string{"UPSTREAM_TOKEN": os.Getenv("NAMED_BY_CONFIG")}}, c.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var p struct {
		Env string `json:"env"`
	}
	if err := json.Unmarshal(c.wait(t, 1)[0].Params, &p); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"MCPGATE_VAULT_KEY", "MADE_UP_CLIENT_SECRET", "s3cret-from-gateway-env", "NAMED_BY_CONFIG="} {
		if strings.Contains(p.Env, secret) {
			t.Errorf("child environment holds %q: %s", secret, p.Env)
		}
	}
	for _, want := range []string{"UPSTREAM_TOKEN=passed-on-purpose", "PATH="} {
		if !strings.Contains(p.Env, want) {
			t.Errorf("child environment lacks %q: %s", want, p.Env)
		}
	}
}

func TestChildEnv(t *testing.T) {
	lookup := func(k string) (string, bool) {
		v, ok := map[string]string{"PATH": "/bin", "HOME": "/h", "SECRET": "x"}[k]
		return v, ok
	}
	tests := []struct {
		name  string
		extra map[string]string
		want  string
	}{
		{"inherited only", nil, "PATH=/bin HOME=/h"},
		{"extra sorted after", map[string]string{"B": "2", "A": "1"}, "PATH=/bin HOME=/h A=1 B=2"},
		{"extra overrides", map[string]string{"HOME": "/srv"}, "PATH=/bin HOME=/srv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(ChildEnv(lookup, tt.extra), " "); got != tt.want {
				t.Errorf("ChildEnv = %q, want %q", got, tt.want)
			}
		})
	}
	if ChildEnv(func(string) (string, bool) { return "", false }, nil) == nil {
		t.Error("ChildEnv is nil: exec.Cmd would pass the whole environment")
	}
}
