package app

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const slowConfig = `
listen: 127.0.0.1:0
store: {sqlite: "${DB}"}
limits: {read_header_timeout: 300ms, read_body_timeout: 300ms}
servers:
  - {name: open, upstream: {url: "${UP}"}, auth: none}
`

// cutOff reports whether the server closes conn within limit while
// trickle keeps writing to it a byte at a time.
func cutOff(t *testing.T, conn net.Conn, start string, trickle string, limit time.Duration) bool {
	t.Helper()
	if _, err := io.WriteString(conn, start); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := io.WriteString(conn, trickle[i%len(trickle):i%len(trickle)+1]); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, conn) // until the server closes
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestSlowlorisHeadersCutOff: a client trickling its headers is cut off
// after read_header_timeout (audit finding 9).
func TestSlowlorisHeadersCutOff(t *testing.T) {
	as := startApp(t, slowConfig)
	conn, err := net.Dial("tcp", as.app.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if !cutOff(t, conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", "X-Slow: aaaaaaaaaaaaaaaa\r\n", 3*time.Second) {
		t.Error("a client trickling headers was not cut off")
	}
}

// TestSlowlorisBodyCutOff: a client trickling its body is cut off after
// read_body_timeout, with a JSON-RPC error or a closed connection.
func TestSlowlorisBodyCutOff(t *testing.T) {
	as := startApp(t, slowConfig)
	conn, err := net.Dial("tcp", as.app.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "POST /mcp/open HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100000\r\n\r\n{"
	if !cutOff(t, conn, head, `"a":1,`, 3*time.Second) {
		t.Error("a client trickling its body was not cut off")
	}
}

// TestBodyDeadlineSparesStreams: once the body is read, the deadline is
// gone: a response may stream far longer than read_body_timeout, and its
// request context stays alive (http.Server.ReadTimeout would cancel it).
func TestBodyDeadlineSparesStreams(t *testing.T) {
	cancelled := make(chan bool, 1)
	srv := httptest.NewUnstartedServer(bodyDeadline(100*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			t.Errorf("read body: %v", err)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 6 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
		cancelled <- r.Context().Err() != nil
	})))
	srv.Start()
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n := 0
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		if strings.HasPrefix(sc.Text(), "data:") {
			n++
		}
	}
	if n != 6 {
		t.Errorf("got %d events, want 6", n)
	}
	if <-cancelled {
		t.Error("the request context was cancelled while streaming")
	}
}

// TestBodyDeadlineGETStreams: a GET (no body) is never given a read
// deadline, so a standalone SSE stream is not cut.
func TestBodyDeadlineGETStreams(t *testing.T) {
	srv := httptest.NewServer(bodyDeadline(50*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			http.Error(w, "cancelled", http.StatusInternalServerError)
		case <-time.After(200 * time.Millisecond):
			_, _ = io.WriteString(w, "ok")
		}
	})))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Errorf("GET got %q", body)
	}
}

// TestHeaderSizeBounded: headers past limits.max_header_bytes get 431
// instead of being buffered.
func TestHeaderSizeBounded(t *testing.T) {
	as := startApp(t, strings.Replace(slowConfig, "limits: {", "limits: {max_header_bytes: 8192, ", 1))
	req, _ := http.NewRequest(http.MethodGet, as.base+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: %d, want 431", resp.StatusCode)
	}
	resp, err = http.Get(as.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("normal request: %d", resp.StatusCode)
	}
}
