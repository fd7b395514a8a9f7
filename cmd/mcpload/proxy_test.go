package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseProxyArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"ok", []string{"-target", "http://127.0.0.1:9/mcp"}, ""},
		{"ok listen", []string{"-listen", "localhost:0", "-target", "http://[::1]:9/mcp"}, ""},
		{"missing target", nil, "-target is required"},
		{"remote target", []string{"-target", "http://198.51.100.7/mcp"}, "not loopback"},
		{"all interfaces", []string{"-listen", ":0", "-target", "http://127.0.0.1:9/mcp"}, "must be loopback"},
		{"remote listen", []string{"-listen", "192.0.2.1:80", "-target", "http://127.0.0.1:9/mcp"}, "must be loopback"},
		{"bad listen", []string{"-listen", "nope", "-target", "http://127.0.0.1:9/mcp"}, "-listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseProxyArgs(tt.args, io.Discard)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// startProxy runs serveProxy until the test ends and returns its base URL.
func startProxy(t *testing.T, target string) (string, *bytes.Buffer) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var logMu sync.Mutex
	logs := &bytes.Buffer{}
	go func() {
		done <- serveProxy(ctx, proxyConfig{Listen: "127.0.0.1:0", Target: u}, lockedWriter{&logMu, logs}, ready)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serveProxy: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("proxy did not shut down")
		}
	})
	select {
	case addr := <-ready:
		return "http://" + addr, logs
	case err := <-done:
		t.Fatalf("proxy failed: %v", err)
	}
	return "", nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestProxyPreservesPathAndHost(t *testing.T) {
	var gotPath, gotHost, gotXFF string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotHost, gotXFF = r.URL.RequestURI(), r.Host, r.Header.Get("X-Forwarded-For")
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	base, logs := startProxy(t, up.URL+"/mcp")
	if !strings.Contains(logs.String(), "mcpload proxy listening on "+base) {
		t.Errorf("missing listening line in %q", logs.String())
	}
	resp, err := http.Get(base + "/mcp/x?y=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if gotPath != "/mcp/x?y=1" {
		t.Errorf("upstream path = %q", gotPath)
	}
	if gotHost != strings.TrimPrefix(up.URL, "http://") {
		t.Errorf("upstream Host = %q, want %q", gotHost, up.URL)
	}
	if gotXFF != "" {
		t.Errorf("bare proxy added X-Forwarded-For %q", gotXFF)
	}
}

func TestProxyStreamsSSE(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: second\n\n")
	}))
	defer up.Close()
	defer close(release)
	base, _ := startProxy(t, up.URL)
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	got := make(chan string, 1)
	go func() {
		n, _ := resp.Body.Read(buf)
		got <- string(buf[:n])
	}()
	select {
	case s := <-got:
		if !strings.Contains(s, "first") {
			t.Errorf("first read = %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first event was not flushed through the proxy")
	}
}

func TestRunThroughProxy(t *testing.T) {
	var calls atomic.Int64
	up := newTestServer(t, "", &calls)
	base, _ := startProxy(t, up.URL+"/")
	for _, extra := range [][]string{nil, {"-sse", "-protocol", "2025-11-25"}} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"run", "-url", base + "/", "-sessions", "4", "-duration", "300ms", "-warmup", "0"}, extra...)
		if code := realMain(context.Background(), args, &stdout, &stderr); code != exitOK {
			t.Fatalf("%v: exit code %d\n%s\n%s", extra, code, stdout.String(), stderr.String())
		}
		if s := lastJSON(t, stdout.String()); s.Requests == 0 || s.Errors != 0 {
			t.Errorf("%v: summary %+v", extra, s)
		}
	}
}

// TestProxyFullDuplex checks that the proxy keeps forwarding the request
// body after the upstream has started its response (see fullDuplex).
func TestProxyFullDuplex(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	}))
	defer up.Close()
	base, _ := startProxy(t, up.URL)

	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, base+"/", pr)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		resp *http.Response
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		got <- result{resp, err}
	}()
	if _, err := io.WriteString(pw, "part1,"); err != nil {
		t.Fatal(err)
	}
	var res result
	select {
	case res = <-got:
	case <-time.After(5 * time.Second):
		pw.CloseWithError(errors.New("timeout"))
		t.Fatal("no response headers while the request body was still open")
	}
	if res.err != nil {
		t.Fatal(res.err)
	}
	defer res.resp.Body.Close()
	io.WriteString(pw, "part2")
	pw.Close()
	body, err := io.ReadAll(res.resp.Body)
	if err != nil {
		t.Fatalf("reading response: %v (got %q)", err, body)
	}
	if string(body) != "part1,part2" {
		t.Errorf("upstream saw body %q, want %q", body, "part1,part2")
	}
}
