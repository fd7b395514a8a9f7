package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpwire"
)

const listenMeta26 = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`

// listenPost26 sends a 2026-07-28 (stateless) POST of one request, with the
// standard headers (SEP-2243).
func listenPost26(t *testing.T, url, token, method, params string) *http.Response {
	t.Helper()
	hdr := map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
	if token != "" {
		hdr["Authorization"] = "Bearer " + token
	}
	if params == "" {
		params = "{" + listenMeta26 + "}"
	}
	// Bounded: a stream that should have been refused ends the test
	// instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":"L1","method":"`+method+`","params":`+params+`}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// listenParams is a subscriptions/listen params object.
func listenParams(filter string) string {
	return `{` + listenMeta26 + `,"notifications":` + filter + `}`
}

// listenUpstream is a 2026-07-28 upstream whose subscriptions/listen
// stream sends events (after a pause before each one, when given) and
// then stays open until the client leaves. It counts the listen requests
// it sees.
type listenUpstream struct {
	spec    UpstreamSpec
	listens atomic.Int64
}

type timedEvent struct {
	after time.Duration
	data  string
}

func newListenUpstream(t *testing.T, timeout time.Duration, events []timedEvent) *listenUpstream {
	t.Helper()
	lu := &listenUpstream{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), `"server/discover"`) {
			// It speaks 2026-07-28 (else the era translator serves).
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"jsonrpc":"2.0","id":"mcpgate-versions","result":{"resultType":"complete","supportedVersions":["2026-07-28"],"capabilities":{},"serverInfo":{"name":"u","version":"1"}}}`)
			return
		}
		if !strings.Contains(string(body), `"subscriptions/listen"`) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"jsonrpc":"2.0","id":"L1","result":{"resultType":"complete"}}`)
			return
		}
		lu.listens.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for _, e := range events {
			select {
			case <-time.After(e.after):
			case <-r.Context().Done():
				return
			}
			fmt.Fprintf(w, "event: message\ndata: %s\n\n", e.data)
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	lu.spec = UpstreamSpec{Name: "u", URL: srv.URL + "/mcp", Timeout: timeout}
	return lu
}

func ack(filter string) string {
	return `{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":"L1"},"notifications":` + filter + `}}`
}

func note(method, params string) string {
	return `{"jsonrpc":"2.0","method":"` + method + `","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":"L1"}` + params + `}}`
}

// readEvents reads the data lines of an event stream until n have
// arrived, the stream ends, or the deadline passes.
func readEvents(t *testing.T, resp *http.Response, n int, deadline time.Duration) []string {
	t.Helper()
	out := make(chan string)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				out <- d
			}
		}
	}()
	var got []string
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for len(got) < n {
		select {
		case d, ok := <-out:
			if !ok {
				return got
			}
			got = append(got, d)
		case <-timer.C:
			return got
		}
	}
	resp.Body.Close()
	for range out { // let the reader end
	}
	return got
}

// TestListenOutlivesUpstreamTimeout: a subscriptions/listen stream is
// carried past the upstream timeout once the upstream acknowledged it
// (an idle subscription is not a slow answer), and its events reach the
// client as the upstream sent them, subscription ids and all.
func TestListenOutlivesUpstreamTimeout(t *testing.T) {
	const timeout = 400 * time.Millisecond // ample for the acknowledgement, sent at once
	lu := newListenUpstream(t, timeout, []timedEvent{
		{0, ack(`{"toolsListChanged":true}`)},
		{3 * timeout, note("notifications/tools/list_changed", "")},
	})
	_, base := newTestGateway(t, []ServerSpec{{Name: "p", Upstreams: []UpstreamSpec{lu.spec}}}, nil)
	resp := listenPost26(t, base+"/mcp/p", "", "subscriptions/listen", listenParams(`{"toolsListChanged":true}`))
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("listen: HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	got := readEvents(t, resp, 2, 5*time.Second)
	if len(got) != 2 || !strings.Contains(got[0], "subscriptions/acknowledged") || !strings.Contains(got[1], "tools/list_changed") ||
		!strings.Contains(got[1], `"io.modelcontextprotocol/subscriptionId":"L1"`) {
		t.Fatalf("events = %q, want the acknowledgement, then the list change with its subscription id", got)
	}
}

// TestListenUnacknowledgedTimesOut: until the upstream acknowledges, the
// listen request is a request like any other: no answer within the
// timeout gets -32011 naming the upstream.
func TestListenUnacknowledgedTimesOut(t *testing.T) {
	lu := newListenUpstream(t, 100*time.Millisecond, nil)
	_, base := newTestGateway(t, []ServerSpec{{Name: "p", Upstreams: []UpstreamSpec{lu.spec}}}, nil)
	resp := listenPost26(t, base+"/mcp/p", "", "subscriptions/listen", listenParams(`{"toolsListChanged":true}`))
	got := readEvents(t, resp, 1, 5*time.Second)
	if len(got) != 1 || !strings.Contains(got[0], fmt.Sprint(mcpwire.CodeUpstreamTimeout)) || !strings.Contains(got[0], `"id":"L1"`) {
		t.Fatalf("events = %q, want a -32011 answer to L1", got)
	}
}

// TestListenEndsGracefullyOnDrain: when the gateway drains, an open
// subscription ends with a SubscriptionsListenResult naming it, so the
// client listens anew (elsewhere) instead of reading a broken stream.
func TestListenEndsGracefullyOnDrain(t *testing.T) {
	lu := newListenUpstream(t, 5*time.Second, []timedEvent{{0, ack(`{"toolsListChanged":true}`)}})
	g, base := newTestGateway(t, []ServerSpec{{Name: "p", Upstreams: []UpstreamSpec{lu.spec}}}, nil)
	resp := listenPost26(t, base+"/mcp/p", "", "subscriptions/listen", listenParams(`{"toolsListChanged":true}`))
	sc := bufio.NewScanner(resp.Body)
	var events []string
	for sc.Scan() {
		d, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		events = append(events, d)
		if len(events) == 1 {
			g.BeginShutdown()
		}
	}
	if len(events) != 2 {
		t.Fatalf("events = %q, want the acknowledgement and the end", events)
	}
	var end struct {
		ID     string `json:"id"`
		Result struct {
			ResultType string                     `json:"resultType"`
			Meta       map[string]json.RawMessage `json:"_meta"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(events[1]), &end); err != nil || end.ID != "L1" || end.Result.ResultType != "complete" ||
		string(end.Result.Meta["io.modelcontextprotocol/subscriptionId"]) != `"L1"` {
		t.Fatalf("end = %s (%v), want a SubscriptionsListenResult for L1", events[1], err)
	}
}

// TestListenScopes: on a server with resource scopes, the resources a
// listen subscribes to are checked like resources/subscribe (403 naming
// the scope, before the upstream sees anything), a subscription list the
// gateway might read differently from the upstream is refused, and
// resource updates the token may not read never reach the client.
func TestListenScopes(t *testing.T) {
	required := func(kind, name string) string {
		if kind == "resource" && strings.HasPrefix(name, "secret://") {
			return "mcp:secret"
		}
		return ""
	}
	lu := newListenUpstream(t, 5*time.Second, []timedEvent{
		{0, ack(`{"toolsListChanged":true,"resourceSubscriptions":["public://a"]}`)},
		{0, note("notifications/resources/updated", `,"uri":"secret://a/child"`)},
		{0, note("notifications/resources/updated", `,"uri":"public://a"`)},
		{0, note("notifications/resources/updated", `,"uri":7`)},
		{0, note("notifications/tools/list_changed", "")},
	})
	auth := &AuthSpec{Resource: "http://x/mcp/p", MetadataURL: "http://x/m/mcp/p", Scopes: []string{"mcp:secret"}, Required: required}
	_, base := newTestGateway(t, []ServerSpec{{Name: "p", Upstreams: []UpstreamSpec{lu.spec}, Auth: auth}}, &Options{Verify: fakeVerify})
	url := base + "/mcp/p"

	for _, tc := range []struct {
		name, filter string
		status, code int
	}{
		{"secret subscription", `{"resourceSubscriptions":["public://a","secret://a"]}`, http.StatusForbidden, mcpwire.CodeInsufficientScope},
		{"not a list", `{"resourceSubscriptions":"secret://a"}`, http.StatusBadRequest, mcpwire.CodeInvalidParams},
		{"not strings", `{"resourceSubscriptions":[{"uri":"secret://a"}]}`, http.StatusBadRequest, mcpwire.CodeInvalidParams},
		{"twice", `{"resourceSubscriptions":["public://a"],"resourceSubscriptions":["secret://a"]}`, http.StatusBadRequest, mcpwire.CodeInvalidParams},
		{"case variant", `{"resourceSubscriptions":["public://a"],"ResourceSubscriptions":["secret://a"]}`, http.StatusBadRequest, mcpwire.CodeInvalidParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := listenPost26(t, url, "scopes:mcp:read", "subscriptions/listen", listenParams(tc.filter))
			code, msg := jsonrpcError(t, resp)
			if resp.StatusCode != tc.status || code != tc.code {
				t.Errorf("HTTP %d, code %d (%s); want %d, %d", resp.StatusCode, code, msg, tc.status, tc.code)
			}
			if tc.status == http.StatusForbidden && !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="mcp:secret"`) {
				t.Errorf("WWW-Authenticate = %q, want the scope named", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	if n := lu.listens.Load(); n != 0 {
		t.Fatalf("the upstream saw %d refused listen requests", n)
	}

	t.Run("updates filtered", func(t *testing.T) {
		resp := listenPost26(t, url, "scopes:mcp:read", "subscriptions/listen", listenParams(`{"toolsListChanged":true,"resourceSubscriptions":["public://a"]}`))
		got := readEvents(t, resp, 3, 5*time.Second)
		all := strings.Join(got, "\n")
		if len(got) != 3 || !strings.Contains(got[0], "acknowledged") || !strings.Contains(got[1], `"uri":"public://a"`) ||
			!strings.Contains(got[2], "tools/list_changed") || strings.Contains(all, "secret://") || strings.Contains(all, `"uri":7`) {
			t.Fatalf("events = %q, want the acknowledgement, the public update and the list change only", got)
		}
	})
	t.Run("all updates for a token with the scope", func(t *testing.T) {
		resp := listenPost26(t, url, "scopes:mcp:secret", "subscriptions/listen", listenParams(`{"resourceSubscriptions":["public://a"]}`))
		got := readEvents(t, resp, 3, 5*time.Second)
		if len(got) != 3 || !strings.Contains(got[1], "secret://a/child") {
			t.Fatalf("events = %q, want the secret update too", got)
		}
	})
}

// TestListenHoldsSlot: an open subscription holds one of its owner's
// session slots (limits.sessions_per_user) until its stream ends; past
// the limit, a listen gets 429 with Retry-After before the upstream sees
// it.
func TestListenHoldsSlot(t *testing.T) {
	lu := newListenUpstream(t, 5*time.Second, []timedEvent{{0, ack(`{"toolsListChanged":true}`)}})
	auth := &AuthSpec{Resource: "http://x/mcp/p", MetadataURL: "http://x/m/mcp/p", Required: func(string, string) string { return "" }}
	g, base := newTestGateway(t, []ServerSpec{{Name: "p", Upstreams: []UpstreamSpec{lu.spec}, Auth: auth}},
		&Options{Verify: fakeVerify, SessionsPerUser: 1})
	url := base + "/mcp/p"
	first := listenPost26(t, url, "scopes:x", "subscriptions/listen", listenParams(`{"toolsListChanged":true}`))
	sc := bufio.NewScanner(first.Body)
	for sc.Scan() && !strings.Contains(sc.Text(), "acknowledged") {
	}
	if n := g.limits.held("user:alice"); n != 1 {
		t.Fatalf("an open subscription holds %d slots, want 1", n)
	}
	second := listenPost26(t, url, "scopes:x", "subscriptions/listen", listenParams(`{"toolsListChanged":true}`))
	code, msg := jsonrpcError(t, second)
	if second.StatusCode != http.StatusTooManyRequests || code != CodeSessionLimit || second.Header.Get("Retry-After") == "" ||
		!strings.Contains(msg, "subscriptions") {
		t.Errorf("second listen: HTTP %d, code %d %q; want 429, %d naming subscriptions", second.StatusCode, code, msg, CodeSessionLimit)
	}
	if n := lu.listens.Load(); n != 1 {
		t.Errorf("the upstream saw %d listens, want 1", n)
	}
	first.Body.Close() // the client leaves: the slot comes back
	for deadline := time.Now().Add(5 * time.Second); g.limits.held("user:alice") != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the slot was not given back")
		}
	}
	third := listenPost26(t, url, "scopes:x", "subscriptions/listen", listenParams(`{"toolsListChanged":true}`))
	if got := readEvents(t, third, 1, 5*time.Second); len(got) != 1 || !strings.Contains(got[0], "acknowledged") {
		t.Fatalf("listen after the first ended: %q", got)
	}
}
