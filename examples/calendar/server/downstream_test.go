package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/examples/calendar/api"
	"github.com/mcpgate/mcpgate/internal/fixture"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// startAPI runs the calendar API with a stand-in provider that knows two
// tokens, and returns the API and its URL.
func startAPI(t *testing.T) (*api.Server, string) {
	t.Helper()
	users := map[string]string{"Bearer sam-token": "sam@tenant-a.example", "Bearer riley-token": "riley@tenant-a.example"}
	prov := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		email, ok := users[r.Header.Get("Authorization")]
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"sub": "sub-" + email, "email": email, "email_verified": true})
	}))
	t.Cleanup(prov.Close)
	a, err := api.New(api.Options{UserinfoURL: prov.URL + "/userinfo", CacheFor: -1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(a)
	t.Cleanup(ts.Close)
	return a, ts.URL
}

// serveHTTP serves srv over Streamable HTTP, as cmd/calendar-server does,
// and returns a function that connects with an Authorization header.
func serveHTTP(t *testing.T, srv *mcp.Server) func(auth string) *mcp.ClientSession {
	t.Helper()
	ts := httptest.NewServer(fixture.NewStreamableHandler(srv, nil))
	t.Cleanup(func() {
		ts.Close()
		for ss := range srv.Sessions() {
			ss.Close()
		}
	})
	return func(auth string) *mcp.ClientSession {
		hc := &http.Client{Transport: headerTransport{"Authorization", auth}}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "calendar-test", Version: "1"}, nil).
			Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: ts.URL, HTTPClient: hc}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
}

// TestAPIMode: with Options.API, every tool acts at the calendar API as
// the caller named by the Authorization header, and the API's owner is
// the provider's account, whatever X-Mcp-User says.
func TestAPIMode(t *testing.T) {
	a, apiURL := startAPI(t)
	connectAs := serveHTTP(t, New(nil, &Options{API: apiURL}))
	sam, riley := connectAs("Bearer sam-token"), connectAs("Bearer riley-token")

	e := create(t, sam, "Planning", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "riley@tenant-a.example")
	if e.Owner != "sam@tenant-a.example" || !strings.HasPrefix(e.ID, "evt_") || len(e.Attendees) != 1 {
		t.Fatalf("created %+v, want owner sam@tenant-a.example", e)
	}
	if got := a.Events("sam@tenant-a.example"); len(got) != 1 || got[0].ID != e.ID || got[0].Title != "Planning" {
		t.Errorf("the API holds %+v for sam", got)
	}
	create(t, sam, "Later", "2026-03-02T15:00:00Z", "2026-03-02T16:00:00Z")

	var list ListResult
	callOK(t, sam, "list_events", map[string]any{"to": "2026-03-02T12:00:00Z"}, &list)
	if got := titles(list.Events); strings.Join(got, ",") != "Planning" {
		t.Errorf("sam's list_events to noon = %v", got)
	}
	callOK(t, riley, "list_events", nil, &list)
	if len(list.Events) != 0 {
		t.Errorf("riley sees sam's events: %v", list.Events)
	}

	var av Availability
	callOK(t, sam, "check_availability", map[string]any{"start": "2026-03-02T10:30:00Z", "end": "2026-03-02T15:30:00Z"}, &av)
	if av.Free || len(av.Busy) != 2 || av.Busy[0] != (Interval{"2026-03-02T10:30:00Z", "2026-03-02T11:00:00Z"}) {
		t.Errorf("check_availability = %+v", av)
	}
	callOK(t, riley, "check_availability", map[string]any{"start": "2026-03-02T10:30:00Z", "end": "2026-03-02T15:30:00Z"}, &av)
	if !av.Free {
		t.Errorf("riley's own calendar is busy: %+v", av)
	}

	var up Event
	callOK(t, sam, "update_event", map[string]any{"id": e.ID, "title": "Planning v2", "attendees": []string{}}, &up)
	if up.ID != e.ID || up.Title != "Planning v2" || up.Start != e.Start || len(up.Attendees) != 0 || up.Owner != e.Owner {
		t.Errorf("update_event = %+v", up)
	}
	if text, isErr := call(t, sam, "update_event", map[string]any{"id": e.ID, "end": "2026-03-02T09:00:00Z"}); !isErr || !strings.Contains(text, "must be after start") {
		t.Errorf("update to end before start = (isError=%v) %q", isErr, text)
	}
	// Riley cannot touch sam's event: at the API it does not exist for him.
	for tool, args := range map[string]map[string]any{"update_event": {"id": e.ID, "title": "mine now"}, "delete_event": {"id": e.ID}} {
		if text, isErr := call(t, riley, tool, args); !isErr || !strings.Contains(text, "no event with id") {
			t.Errorf("riley's %s of sam's event = (isError=%v) %q", tool, isErr, text)
		}
	}
	var del DeleteResult
	callOK(t, sam, "delete_event", map[string]any{"id": e.ID}, &del)
	if got := a.Events("sam@tenant-a.example"); len(got) != 1 || got[0].Title != "Later" {
		t.Errorf("after delete the API holds %+v", got)
	}
}

// TestAPIModeRefused: a token the API refuses, and a call with no
// credential, are tool errors that say what to do; nothing is written.
func TestAPIModeRefused(t *testing.T) {
	a, apiURL := startAPI(t)
	srv := New(nil, &Options{API: apiURL})
	connectAs := serveHTTP(t, srv)
	args := map[string]any{"title": "x", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z"}
	for _, tc := range []struct{ auth, want string }{
		{"Bearer expired-token", "the calendar API refused your calendar credential (HTTP 401"},
		{"", "this call carries no calendar credential"},
	} {
		cs := connectAs(tc.auth)
		for tool, args := range map[string]map[string]any{"create_event": args, "list_events": {}} {
			text, isErr := call(t, cs, tool, args)
			if !isErr || !strings.Contains(text, tc.want) {
				t.Errorf("%q %s = (isError=%v) %q, want %q", tc.auth, tool, isErr, text, tc.want)
			}
			if tc.auth != "" && !strings.Contains(text, "Connect your calendar again") {
				t.Errorf("%q %s: %q does not say to reconnect", tc.auth, tool, text)
			}
		}
	}
	if got := a.Events("sam@tenant-a.example"); len(got) != 0 {
		t.Errorf("the API stored %+v", got)
	}
	// Over a transport without headers (stdio, in memory): no credential.
	st, ct := mcp.NewInMemoryTransports()
	ss, err := srv.Connect(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(context.Background(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	if text, isErr := call(t, cs, "create_event", args); !isErr || !strings.Contains(text, "no calendar credential") {
		t.Errorf("in memory: (isError=%v) %q", isErr, text)
	}
	cs.Close()
	ss.Wait()
}

func TestAPIUnreachable(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	connectAs := serveHTTP(t, New(nil, &Options{API: dead.URL}))
	text, isErr := call(t, connectAs("Bearer sam-token"), "list_events", nil)
	if !isErr || !strings.Contains(text, "could not be reached") {
		t.Errorf("list_events with the API down = (isError=%v) %q", isErr, text)
	}
}
