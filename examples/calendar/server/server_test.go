package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"github.com/mcpgate/mcpgate/examples/callslog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/fixture"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// connect serves a calendar over store (a fresh in-memory one when nil)
// and returns a client session to it over in-memory transports.
func connect(t *testing.T, store *Store, opts *Options) *mcp.ClientSession {
	t.Helper()
	ctx := context.Background()
	if store == nil {
		store = openStore(t, "")
	}
	st, ct := mcp.NewInMemoryTransports()
	ss, err := New(store, opts).Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "calendar-test", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Wait()
	})
	return cs
}

func openStore(t *testing.T, path string) *Store {
	t.Helper()
	s, err := OpenStore(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// call calls a tool and returns its text and whether it is a tool error.
func call(t *testing.T, cs *mcp.ClientSession, name string, args any) (string, bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("CallTool(%s): %v", name, err)
	}
	if len(res.Content) != 1 {
		t.Fatalf("%s: got %d content blocks, want 1", name, len(res.Content))
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("%s: content is %T, want text", name, res.Content[0])
	}
	return tc.Text, res.IsError
}

// callOK calls a tool that must succeed and decodes its JSON text into out.
func callOK(t *testing.T, cs *mcp.ClientSession, name string, args, out any) {
	t.Helper()
	text, isErr := call(t, cs, name, args)
	if isErr {
		t.Fatalf("%s(%v): tool error %q", name, args, text)
	}
	if err := json.Unmarshal([]byte(text), out); err != nil {
		t.Fatalf("%s: result %q: %v", name, text, err)
	}
}

func create(t *testing.T, cs *mcp.ClientSession, title, start, end string, attendees ...string) Event {
	t.Helper()
	var e Event
	callOK(t, cs, "create_event", map[string]any{"title": title, "start": start, "end": end, "attendees": attendees}, &e)
	return e
}

func titles(evs []Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.Title)
	}
	return out
}

func TestTools(t *testing.T) {
	cs := connect(t, nil, nil)
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tool := range res.Tools {
		got = append(got, tool.Name)
		if tool.Description == "" {
			t.Errorf("%s has no description", tool.Name)
		}
		if ro := tool.Annotations != nil && tool.Annotations.ReadOnlyHint; ro != strings.HasPrefix(tool.Name, "list") && ro != strings.HasPrefix(tool.Name, "check") {
			t.Errorf("%s: readOnlyHint = %v", tool.Name, ro)
		}
	}
	slices.Sort(got)
	want := []string{"check_availability", "create_event", "delete_event", "list_events", "update_event"}
	if !slices.Equal(got, want) {
		t.Errorf("tools = %v, want %v", got, want)
	}
}

func TestCreateEvent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    map[string]any
		want    Event  // when the call succeeds (ID not compared)
		wantErr string // substring of the tool error
	}{
		{
			name: "with attendees",
			args: map[string]any{"title": "Planning", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z",
				"attendees": []string{"riley@tenant-a.example", "sam@tenant-a.example"}},
			want: Event{Title: "Planning", Start: "2026-03-02T10:00:00Z", End: "2026-03-02T11:00:00Z",
				Attendees: []string{"riley@tenant-a.example", "sam@tenant-a.example"}, Owner: UnknownOwner},
		},
		{
			name: "no attendees, offset and fraction kept, title trimmed",
			args: map[string]any{"title": "  Focus  ", "start": "2026-03-02T10:00:00.5+01:00", "end": "2026-03-02T12:00:00+01:00"},
			want: Event{Title: "Focus", Start: "2026-03-02T10:00:00.5+01:00", End: "2026-03-02T12:00:00+01:00",
				Attendees: []string{}, Owner: UnknownOwner},
		},
		{
			name: "repeated attendee dropped",
			args: map[string]any{"title": "1:1", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T10:30:00Z",
				"attendees": []string{"riley@tenant-a.example", "Riley@tenant-a.example"}},
			want: Event{Title: "1:1", Start: "2026-03-02T10:00:00Z", End: "2026-03-02T10:30:00Z",
				Attendees: []string{"riley@tenant-a.example"}, Owner: UnknownOwner},
		},
		{name: "missing title", args: map[string]any{"start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z"}, wantErr: "title"},
		{name: "blank title", args: map[string]any{"title": " ", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z"}, wantErr: "title must not be empty"},
		{name: "long title", args: map[string]any{"title": strings.Repeat("x", MaxTitleLen+1), "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z"}, wantErr: "longer than"},
		{name: "missing end", args: map[string]any{"title": "x", "start": "2026-03-02T10:00:00Z"}, wantErr: "end"},
		{name: "not RFC 3339", args: map[string]any{"title": "x", "start": "tomorrow 10am", "end": "2026-03-02T11:00:00Z"}, wantErr: `start: "tomorrow 10am" is not an RFC 3339 date-time`},
		{name: "no offset", args: map[string]any{"title": "x", "start": "2026-03-02T10:00:00", "end": "2026-03-02T11:00:00Z"}, wantErr: "not an RFC 3339"},
		{name: "date only", args: map[string]any{"title": "x", "start": "2026-03-02T10:00:00Z", "end": "2026-03-03"}, wantErr: `end: "2026-03-03" is not an RFC 3339`},
		{name: "end before start", args: map[string]any{"title": "x", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T09:00:00Z"}, wantErr: "must be after start"},
		{name: "end equals start", args: map[string]any{"title": "x", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00+01:00"}, wantErr: "must be after start"},
		{name: "bad e-mail", args: map[string]any{"title": "x", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z", "attendees": []string{"riley"}}, wantErr: `attendees[0]: "riley" is not an e-mail address`},
		{name: "display name", args: map[string]any{"title": "x", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z", "attendees": []string{"a@b.example", "Riley <riley@tenant-a.example>"}}, wantErr: "attendees[1]"},
		{name: "no domain dot", args: map[string]any{"title": "x", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z", "attendees": []string{"riley@localhost"}}, wantErr: "not an e-mail"},
		{name: "unknown argument", args: map[string]any{"title": "x", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z", "room": "A"}, wantErr: "room"},
		{name: "wrong type", args: map[string]any{"title": 42, "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z"}, wantErr: "title"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := connect(t, nil, nil)
			text, isErr := call(t, cs, "create_event", tc.args)
			if tc.wantErr != "" {
				if !isErr || !strings.Contains(text, tc.wantErr) {
					t.Fatalf("got (isError=%v) %q, want a tool error containing %q", isErr, text, tc.wantErr)
				}
				var list ListResult
				callOK(t, cs, "list_events", nil, &list)
				if len(list.Events) != 0 {
					t.Errorf("a failed create stored %v", list.Events)
				}
				return
			}
			if isErr {
				t.Fatalf("tool error %q", text)
			}
			var got Event
			if err := json.Unmarshal([]byte(text), &got); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got.ID, "evt_") {
				t.Errorf("id = %q", got.ID)
			}
			tc.want.ID = got.ID
			if !equalEvent(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			var list ListResult
			callOK(t, cs, "list_events", nil, &list)
			if len(list.Events) != 1 || !equalEvent(list.Events[0], tc.want) {
				t.Errorf("list_events = %+v, want [%+v]", list.Events, tc.want)
			}
		})
	}
}

func equalEvent(a, b Event) bool {
	return a.ID == b.ID && a.Title == b.Title && a.Start == b.Start && a.End == b.End &&
		a.Owner == b.Owner && slices.Equal(a.Attendees, b.Attendees)
}

func TestListEvents(t *testing.T) {
	cs := connect(t, nil, nil)
	create(t, cs, "late", "2026-03-02T15:00:00Z", "2026-03-02T16:00:00Z")
	create(t, cs, "early", "2026-03-02T08:00:00Z", "2026-03-02T09:00:00Z")
	create(t, cs, "noon", "2026-03-02T11:30:00Z", "2026-03-02T12:30:00Z")
	create(t, cs, "next day", "2026-03-03T08:00:00+02:00", "2026-03-03T09:00:00+02:00")

	for _, tc := range []struct {
		name    string
		args    map[string]any
		want    []string
		wantErr string
	}{
		{name: "all, by start", args: nil, want: []string{"early", "noon", "late", "next day"}},
		{name: "from", args: map[string]any{"from": "2026-03-02T12:00:00Z"}, want: []string{"noon", "late", "next day"}},
		{name: "to", args: map[string]any{"to": "2026-03-02T11:30:00Z"}, want: []string{"early"}},
		{name: "window, overlap counts", args: map[string]any{"from": "2026-03-02T08:30:00Z", "to": "2026-03-02T15:00:01Z"}, want: []string{"early", "noon", "late"}},
		{name: "touching is not overlapping", args: map[string]any{"from": "2026-03-02T09:00:00Z", "to": "2026-03-02T11:30:00Z"}, want: []string{}},
		{name: "offsets compared as instants", args: map[string]any{"from": "2026-03-03T08:30:00+02:00", "to": "2026-03-03T08:00:00+01:00"}, want: []string{"next day"}},
		{name: "bad from", args: map[string]any{"from": "yesterday"}, wantErr: `from: "yesterday" is not an RFC 3339`},
		{name: "to before from", args: map[string]any{"from": "2026-03-02T12:00:00Z", "to": "2026-03-02T11:00:00Z"}, wantErr: "to must be after from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantErr != "" {
				text, isErr := call(t, cs, "list_events", tc.args)
				if !isErr || !strings.Contains(text, tc.wantErr) {
					t.Fatalf("got (isError=%v) %q, want error containing %q", isErr, text, tc.wantErr)
				}
				return
			}
			var got ListResult
			callOK(t, cs, "list_events", tc.args, &got)
			if !slices.Equal(titles(got.Events), tc.want) {
				t.Errorf("got %v, want %v", titles(got.Events), tc.want)
			}
		})
	}
}

func TestCheckAvailability(t *testing.T) {
	cs := connect(t, nil, nil)
	create(t, cs, "a", "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z")
	create(t, cs, "b", "2026-03-02T09:30:00Z", "2026-03-02T10:30:00Z")
	create(t, cs, "c", "2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z")

	for _, tc := range []struct {
		name       string
		start, end string
		free       bool
		busy       []Interval
		conflicts  []string
		wantErr    string
	}{
		{name: "free", start: "2026-03-02T10:30:00Z", end: "2026-03-02T11:00:00Z", free: true, busy: []Interval{}, conflicts: []string{}},
		{name: "merged and clipped", start: "2026-03-02T09:15:00Z", end: "2026-03-02T11:30:00Z",
			busy:      []Interval{{"2026-03-02T09:15:00Z", "2026-03-02T10:30:00Z"}, {"2026-03-02T11:00:00Z", "2026-03-02T11:30:00Z"}},
			conflicts: []string{"a", "b", "c"}},
		{name: "in the window's offset", start: "2026-03-02T12:00:00+01:00", end: "2026-03-02T13:00:00+01:00",
			busy: []Interval{{"2026-03-02T12:00:00+01:00", "2026-03-02T13:00:00+01:00"}}, conflicts: []string{"c"}},
		{name: "bad end", start: "2026-03-02T09:00:00Z", end: "soon", wantErr: `end: "soon"`},
		{name: "empty window", start: "2026-03-02T09:00:00Z", end: "2026-03-02T09:00:00Z", wantErr: "must be after start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := map[string]any{"start": tc.start, "end": tc.end}
			if tc.wantErr != "" {
				text, isErr := call(t, cs, "check_availability", args)
				if !isErr || !strings.Contains(text, tc.wantErr) {
					t.Fatalf("got (isError=%v) %q, want error containing %q", isErr, text, tc.wantErr)
				}
				return
			}
			var got Availability
			callOK(t, cs, "check_availability", args, &got)
			if got.Free != tc.free || !slices.Equal(got.Busy, tc.busy) || !slices.Equal(titles(got.Conflicts), tc.conflicts) {
				t.Errorf("got free=%v busy=%v conflicts=%v, want free=%v busy=%v conflicts=%v",
					got.Free, got.Busy, titles(got.Conflicts), tc.free, tc.busy, tc.conflicts)
			}
		})
	}
}

func TestUpdateEvent(t *testing.T) {
	const start, end = "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"
	for _, tc := range []struct {
		name    string
		args    map[string]any // "id" is added unless present
		want    Event          // ID and Owner filled in
		wantErr string
	}{
		{name: "title", args: map[string]any{"title": "Renamed"},
			want: Event{Title: "Renamed", Start: start, End: end, Attendees: []string{"riley@tenant-a.example"}}},
		{name: "move both", args: map[string]any{"start": "2026-03-03T10:00:00Z", "end": "2026-03-03T10:30:00Z"},
			want: Event{Title: "Planning", Start: "2026-03-03T10:00:00Z", End: "2026-03-03T10:30:00Z", Attendees: []string{"riley@tenant-a.example"}}},
		{name: "extend end", args: map[string]any{"end": "2026-03-02T12:00:00Z"},
			want: Event{Title: "Planning", Start: start, End: "2026-03-02T12:00:00Z", Attendees: []string{"riley@tenant-a.example"}}},
		{name: "clear attendees", args: map[string]any{"attendees": []string{}},
			want: Event{Title: "Planning", Start: start, End: end, Attendees: []string{}}},
		{name: "replace attendees", args: map[string]any{"attendees": []string{"sam@tenant-a.example"}},
			want: Event{Title: "Planning", Start: start, End: end, Attendees: []string{"sam@tenant-a.example"}}},
		{name: "start past the end", args: map[string]any{"start": "2026-03-02T11:00:00Z"}, wantErr: "end (2026-03-02T11:00:00Z) must be after start (2026-03-02T11:00:00Z)"},
		{name: "bad start", args: map[string]any{"start": "10:00"}, wantErr: `start: "10:00" is not an RFC 3339`},
		{name: "bad attendee", args: map[string]any{"attendees": []string{"not an address"}}, wantErr: "attendees[0]"},
		{name: "blank title", args: map[string]any{"title": ""}, wantErr: "title must not be empty"},
		{name: "nothing", args: map[string]any{}, wantErr: "nothing to update"},
		{name: "unknown id", args: map[string]any{"id": "evt_nope", "title": "x"}, wantErr: `no event with id "evt_nope"`},
		{name: "no id", args: map[string]any{"id": "", "title": "x"}, wantErr: "id is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := connect(t, nil, nil)
			orig := create(t, cs, "Planning", start, end, "riley@tenant-a.example")
			args := map[string]any{"id": orig.ID}
			for k, v := range tc.args {
				args[k] = v
			}
			text, isErr := call(t, cs, "update_event", args)
			var list ListResult
			if tc.wantErr != "" {
				if !isErr || !strings.Contains(text, tc.wantErr) {
					t.Fatalf("got (isError=%v) %q, want error containing %q", isErr, text, tc.wantErr)
				}
				callOK(t, cs, "list_events", nil, &list)
				if len(list.Events) != 1 || !equalEvent(list.Events[0], orig) {
					t.Errorf("a failed update changed the event: %+v, was %+v", list.Events, orig)
				}
				return
			}
			if isErr {
				t.Fatalf("tool error %q", text)
			}
			var got Event
			if err := json.Unmarshal([]byte(text), &got); err != nil {
				t.Fatal(err)
			}
			tc.want.ID, tc.want.Owner = orig.ID, orig.Owner
			if !equalEvent(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			callOK(t, cs, "list_events", nil, &list)
			if len(list.Events) != 1 || !equalEvent(list.Events[0], tc.want) {
				t.Errorf("stored %+v, want %+v", list.Events, tc.want)
			}
		})
	}
}

func TestDeleteEvent(t *testing.T) {
	cs := connect(t, nil, nil)
	keep := create(t, cs, "keep", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")
	drop := create(t, cs, "drop", "2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z")

	var del DeleteResult
	callOK(t, cs, "delete_event", map[string]any{"id": drop.ID}, &del)
	if del != (DeleteResult{ID: drop.ID, Deleted: true}) {
		t.Errorf("delete_event = %+v", del)
	}
	for _, args := range []map[string]any{{"id": drop.ID}, {"id": "evt_nope"}} {
		if text, isErr := call(t, cs, "delete_event", args); !isErr || !strings.Contains(text, "no event with id") {
			t.Errorf("delete_event(%v) = (isError=%v) %q, want not found", args, isErr, text)
		}
	}
	if text, isErr := call(t, cs, "delete_event", map[string]any{}); !isErr || !strings.Contains(text, "id") {
		t.Errorf("delete_event({}) = (isError=%v) %q", isErr, text)
	}
	var list ListResult
	callOK(t, cs, "list_events", nil, &list)
	if len(list.Events) != 1 || list.Events[0].ID != keep.ID {
		t.Errorf("left %+v, want only %s", list.Events, keep.ID)
	}
}

func TestCallsLog(t *testing.T) {
	var buf bytes.Buffer
	cs := connect(t, nil, &Options{CallsLog: callslog.New(&buf)})
	create(t, cs, "x", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")
	call(t, cs, "create_event", map[string]any{"title": "bad"}) // invalid: still logged
	if _, err := cs.ListTools(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	call(t, cs, "list_events", nil)

	var calls []callslog.Call
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var c callslog.Call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if c.Time.IsZero() {
			t.Errorf("line %q has no time", sc.Text())
		}
		calls = append(calls, c)
	}
	var got []string
	for _, c := range calls {
		got = append(got, c.Tool+" "+string(c.Arguments))
	}
	want := []string{
		`create_event {"attendees":null,"end":"2026-03-02T11:00:00Z","start":"2026-03-02T10:00:00Z","title":"x"}`,
		`create_event {"title":"bad"}`,
		`list_events {}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("calls log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "calendar.db")
	s1, err := OpenStore(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	cs := connect(t, s1, nil)
	e := create(t, cs, "survives", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "riley@tenant-a.example")
	cs.Close()
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	cs = connect(t, openStore(t, path), nil)
	var list ListResult
	callOK(t, cs, "list_events", nil, &list)
	if len(list.Events) != 1 || !equalEvent(list.Events[0], e) {
		t.Errorf("after reopening: %+v, want [%+v]", list.Events, e)
	}
}

// TestOwnerHeader serves the calendar over Streamable HTTP, as
// cmd/calendar-server does, and checks that the owner comes from the
// X-Mcp-User header of the request that carried the call.
func TestOwnerHeader(t *testing.T) {
	srv := New(openStore(t, ""), nil)
	ts := httptest.NewServer(fixture.NewStreamableHandler(srv, nil))
	defer ts.Close()

	for _, tc := range []struct{ header, want string }{
		{"sam@tenant-a.example", "sam@tenant-a.example"},
		{"", UnknownOwner},
		{strings.Repeat("x", 300), UnknownOwner},
	} {
		hc := &http.Client{Transport: headerTransport{OwnerHeader, tc.header}}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "calendar-test", Version: "1"}, nil).
			Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: ts.URL, HTTPClient: hc}, nil)
		if err != nil {
			t.Fatal(err)
		}
		e := create(t, cs, "x", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")
		if e.Owner != tc.want {
			t.Errorf("%s: %q: owner = %q, want %q", OwnerHeader, tc.header, e.Owner, tc.want)
		}
		cs.Close()
	}
	for ss := range srv.Sessions() {
		ss.Close()
	}
}

type headerTransport struct{ name, value string }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if h.value != "" {
		r = r.Clone(r.Context())
		r.Header.Set(h.name, h.value)
	}
	return http.DefaultTransport.RoundTrip(r)
}
