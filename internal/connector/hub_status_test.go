package connector

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/mcpgate/mcpgate/internal/upstream"
)

// TestReasonCodes: every reason the hub closes an instance for has a code
// of its own (a new reason added to hub.go without one would show up in
// metrics as "other").
func TestReasonCodes(t *testing.T) {
	src, err := os.ReadFile("hub.go")
	if err != nil {
		t.Fatal(err)
	}
	literals := regexp.MustCompile(`\.close\("([^"]*)"`).FindAllSubmatch(src, -1)
	if len(literals) < 5 {
		t.Fatalf("found only %d close reasons in hub.go", len(literals))
	}
	for _, l := range literals {
		if code := ReasonCode(string(l[1])); code == "other" {
			t.Errorf("close reason %q has no code", l[1])
		}
	}
	tests := []struct{ reason, want string }{
		{"connection lost", "connection_lost"},
		{"control stream: frame too large", "control_error"},
		{"the client was cut off", "cut_off"},
		{"", "ended"},
		{"anything else", "other"},
	}
	for _, tt := range tests {
		if got := ReasonCode(tt.reason); got != tt.want {
			t.Errorf("ReasonCode(%q) = %q, want %q", tt.reason, got, tt.want)
		}
	}
}

// recObserver records the hub's events.
type recObserver struct {
	mu     sync.Mutex
	events []string
}

func (o *recObserver) add(e string)                  { o.mu.Lock(); o.events = append(o.events, e); o.mu.Unlock() }
func (o *recObserver) Connected(c string)            { o.add("connected " + c) }
func (o *recObserver) Disconnected(c, reason string) { o.add("disconnected " + c + " " + reason) }
func (o *recObserver) StreamLost(c string)           { o.add("stream lost " + c) }
func (o *recObserver) Refused(reason string)         { o.add("refused " + reason) }

func (o *recObserver) has(e string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Contains(o.events, e)
}

// TestObserverEvents: the hub reports a refused connection, a connect,
// and a dropped instance with the streams that were open on it.
func TestObserverEvents(t *testing.T) {
	r := newRig(t)
	obs := &recObserver{}
	r.hub.SetObserver(obs)
	_, resp, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(r.srv.URL, "http")+Path, nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("no token: %v %v", err, resp)
	}
	waitFor(t, func() bool { return obs.has("refused invalid_request") })

	release := make(chan struct{})
	var inflight atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		inflight.Add(1)
		<-release
	}))
	defer up.Close()
	defer close(release)
	_, stop := r.agent("edge", "edge-client", "a", map[string]string{"m": up.URL})
	r.waitInstances("edge", 1)
	if !obs.has("connected edge") {
		t.Fatalf("events %v", obs.events)
	}
	c := r.client(upstream.ConnectorRoute{Connector: "edge", Upstream: "m", Address: addrOf(t, up.URL)})
	failed := make(chan error, 2)
	for range 2 {
		go func() {
			resp, err := c.Get(up.URL + "/mcp")
			if err == nil {
				resp.Body.Close()
			}
			failed <- err
		}()
	}
	waitFor(t, func() bool { return inflight.Load() == 2 })
	stop()
	for range 2 {
		if err := <-failed; err == nil {
			t.Error("a request in flight on the dropped instance succeeded")
		}
	}
	waitFor(t, func() bool { return len(obs.snapshot()) >= 5 })
	ev := obs.snapshot()
	if !slices.Contains(ev, "disconnected edge connection_lost") {
		t.Errorf("events %q", ev)
	}
	if n := len(slices.DeleteFunc(slices.Clone(ev), func(e string) bool { return e != "stream lost edge" })); n != 2 {
		t.Errorf("%d streams lost, want the 2 in flight: %q", n, ev)
	}
}

func (o *recObserver) snapshot() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.events)
}
