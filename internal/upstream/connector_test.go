package upstream

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

// fakeDialer dials the real address, recording what it was asked.
type fakeDialer struct {
	mu    sync.Mutex
	calls []ConnectorRoute
}

func (d *fakeDialer) Dial(ctx context.Context, connector, upstream, address string) (net.Conn, error) {
	d.mu.Lock()
	d.calls = append(d.calls, ConnectorRoute{Connector: connector, Upstream: upstream, Address: address})
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", address)
}

func (d *fakeDialer) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.calls)
}

// TestConnectorTransport: routed addresses go through the dialer (TLS to
// an https upstream runs over the pipe), everything else through base.
func TestConnectorTransport(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	routed := httptest.NewServer(ok)
	defer routed.Close()
	routedTLS := httptest.NewTLSServer(ok)
	defer routedTLS.Close()
	direct := httptest.NewServer(ok)
	defer direct.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = &tls.Config{RootCAs: routedTLS.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	d := &fakeDialer{}
	hp := func(raw string) string { return strings.TrimPrefix(strings.TrimPrefix(raw, "http://"), "https://") }
	tr := NewConnectorTransport(base, d, []ConnectorRoute{
		{Connector: "edge", Upstream: "plain", Address: hp(routed.URL)},
		{Connector: "edge", Upstream: "secure", Address: hp(routedTLS.URL)},
	})
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	tests := []struct {
		name      string
		url       string
		viaTunnel bool
	}{
		{"routed", routed.URL + "/mcp", true},
		{"routed https", routedTLS.URL + "/mcp", true},
		{"not routed", direct.URL + "/mcp", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := d.count()
			tr.CloseIdleConnections()
			resp, err := c.Get(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "ok" {
				t.Fatalf("body %q", b)
			}
			if got := d.count() > before; got != tt.viaTunnel {
				t.Fatalf("through the connector: %v, want %v", got, tt.viaTunnel)
			}
		})
	}
}

// TestStreamLink: messages go out as lines and come back through the
// handler; the stream's end calls OnExit and closes Done.
func TestStreamLink(t *testing.T) {
	gw, conn := net.Pipe()
	got := make(chan *mcpwire.Message, 1)
	exited := make(chan error, 1)
	l, err := OpenStream(context.Background(), StreamOptions{Name: "tools",
		Open:   func(context.Context) (net.Conn, error) { return gw, nil },
		OnExit: func(err error) { exited <- err }}, func(m *mcpwire.Message, _ json.RawMessage) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	// The "process" echoes one answer per request line.
	go func() {
		buf := make([]byte, 4096)
		n, _ := conn.Read(buf)
		if !strings.HasSuffix(string(buf[:n]), "\n") || !strings.Contains(string(buf[:n]), `"method":"ping"`) {
			conn.Close()
			return
		}
		_, _ = conn.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}` + "\n"))
		conn.Close()
	}()
	if err := l.Send(context.Background(), mcpwire.Request(json.RawMessage("1"), "ping", nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if !m.IsResponse() || string(m.ID) != "1" {
			t.Fatalf("message %+v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("OnExit not called when the stream ended")
	}
	<-l.Done()
	if err := l.Send(context.Background(), mcpwire.Request(json.RawMessage("2"), "ping", nil)); err != ErrClosed {
		t.Fatalf("Send after the end: %v", err)
	}
	_ = l.Close()
}

// TestStreamLinkWriteTimeout: a connector or process that stops reading
// fails the link within the write timeout instead of blocking the sender
// until the session ends.
func TestStreamLinkWriteTimeout(t *testing.T) {
	gw, conn := net.Pipe() // synchronous: a write blocks until the peer reads
	defer conn.Close()
	exited := make(chan error, 1)
	l, err := OpenStream(context.Background(), StreamOptions{Name: "tools", WriteTimeout: 50 * time.Millisecond,
		Open:   func(context.Context) (net.Conn, error) { return gw, nil },
		OnExit: func(err error) { exited <- err }}, func(*mcpwire.Message, json.RawMessage) {})
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() { sent <- l.Send(context.Background(), mcpwire.Request(json.RawMessage("1"), "ping", nil)) }()
	select {
	case err := <-sent:
		if err == nil || !strings.Contains(err.Error(), "not reading") {
			t.Fatalf("Send to a stream nobody reads: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send blocked past its write timeout")
	}
	select {
	case err := <-exited:
		if err == nil || !strings.Contains(err.Error(), "not reading") {
			t.Fatalf("OnExit: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the link was not failed")
	}
	<-l.Done()
	// A connector stream's deadline error is yamux's, not the os one.
	if !isTimeout(fmt.Errorf("wrapped: %w", yamux.ErrTimeout)) || isTimeout(io.EOF) {
		t.Fatal("isTimeout does not tell a yamux write timeout")
	}
}
