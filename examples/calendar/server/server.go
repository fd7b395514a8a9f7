// Package server is the calendar MCP server of mcpgate's calendar example
// (scenario S1): read tools (list_events, check_availability) and write
// tools (create_event, update_event, delete_event) over events kept in
// SQLite. cmd/calendar-server serves it over Streamable HTTP; mcpgate in
// front of it decides who may call which tool.
//
// With Options.API, the server keeps no events itself: every tool calls the
// downstream calendar API (package api) with the Authorization header of the
// request that carried the tool call. Behind mcpgate with an upstream in
// credentials mode "connection", that header is the user's own token of the
// calendar's OAuth provider, so the API acts as that user: the events are
// theirs, and their owner is who the provider says they are.
//
// Every tool call the server receives can be appended to a calls log (one
// JSON line per call), so that tests can prove the server did, or did not,
// see a call that the gateway should have refused.
package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/mcpgate/mcpgate/examples/callslog"
	"log/slog"
	"net/http"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const (
	// Name and Version are reported in serverInfo.
	Name    = "calendar"
	Version = "1.0.0"

	// OwnerHeader names the HTTP request header whose value becomes the
	// owner of the events a call creates. It is a stand-in until the
	// gateway hands the upstream a verified identity; without it (or over a
	// transport without headers) the owner is UnknownOwner.
	OwnerHeader = "X-Mcp-User"
	// UnknownOwner is the owner when the call carries no OwnerHeader.
	UnknownOwner = "unknown"

	// MaxTitleLen and MaxAttendees bound create_event and update_event.
	MaxTitleLen  = 200
	MaxAttendees = 100
	maxOwnerLen  = 256
)

// Options configures New. The zero value (or nil) is valid.
type Options struct {
	// CallsLog, when set, receives one JSON line per tools/call
	// (see callslog.New).
	CallsLog *callslog.Log
	// Logger receives the SDK's server-side logs. Nil discards them.
	Logger *slog.Logger
	// API, when set, is the base URL of the downstream calendar API
	// (e.g. http://127.0.0.1:9500): the tools call it as the caller
	// instead of using the store, which may then be nil.
	API string
	// HTTPClient calls the API. Nil: a client with a 10 s timeout.
	HTTPClient *http.Client
}

// New returns the calendar MCP server over store, or over the calendar
// API when opts.API is set.
func New(store *Store, opts *Options) *mcp.Server {
	var o Options
	if opts != nil {
		o = *opts
	}
	c := &calendar{store: store}
	instructions := "A shared team calendar. Times are RFC 3339 date-times with an offset, e.g. 2026-03-02T10:00:00Z."
	if o.API != "" {
		c.api = newAPIClient(o.API, o.HTTPClient)
		instructions = "The caller's own calendar. Times are RFC 3339 date-times with an offset, e.g. 2026-03-02T10:00:00Z."
	} else if store == nil {
		panic("calendar: New needs a store or Options.API")
	}
	srv := mcp.NewServer(&mcp.Implementation{Name: Name, Title: "Calendar (mcpgate example)", Version: Version},
		&mcp.ServerOptions{Instructions: instructions, Logger: o.Logger})
	if o.CallsLog != nil {
		srv.AddReceivingMiddleware(o.CallsLog.Middleware())
	}

	mcp.AddTool(srv, &mcp.Tool{
		Name:        "list_events",
		Title:       "List events",
		Description: "Lists the calendar's events, ordered by start. With from and/or to, only the events that overlap that window.",
		InputSchema: schemaWithFormats[ListArgs](map[string]string{"from": "date-time", "to": "date-time"}),
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, c.listEvents)

	mcp.AddTool(srv, &mcp.Tool{
		Name:        "check_availability",
		Title:       "Check availability",
		Description: "Tells whether the window [start, end) is free, and if not, the busy intervals in it and the conflicting events.",
		InputSchema: schemaWithFormats[AvailabilityArgs](map[string]string{"start": "date-time", "end": "date-time"}),
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, c.checkAvailability)

	mcp.AddTool(srv, &mcp.Tool{
		Name:        "create_event",
		Title:       "Create event",
		Description: "Creates an event owned by the caller and returns it.",
		InputSchema: schemaWithFormats[CreateArgs](map[string]string{"start": "date-time", "end": "date-time", "attendees": "email"}),
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false), OpenWorldHint: ptr(false)},
	}, c.createEvent)

	mcp.AddTool(srv, &mcp.Tool{
		Name:        "update_event",
		Title:       "Update event",
		Description: "Changes the given fields of an event (attendees, when given, replace the list) and returns it.",
		InputSchema: schemaWithFormats[UpdateArgs](map[string]string{"start": "date-time", "end": "date-time", "attendees": "email"}),
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, c.updateEvent)

	mcp.AddTool(srv, &mcp.Tool{
		Name:        "delete_event",
		Title:       "Delete event",
		Description: "Deletes an event.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, c.deleteEvent)

	return srv
}

// ListArgs is the input of list_events.
type ListArgs struct {
	From string `json:"from,omitempty" jsonschema:"only events that end after this RFC 3339 date-time"`
	To   string `json:"to,omitempty" jsonschema:"only events that start before this RFC 3339 date-time"`
}

// ListResult is the output of list_events.
type ListResult struct {
	Events []Event `json:"events"`
}

// AvailabilityArgs is the input of check_availability.
type AvailabilityArgs struct {
	Start string `json:"start" jsonschema:"start of the window, RFC 3339"`
	End   string `json:"end" jsonschema:"end of the window, RFC 3339, after start"`
}

// Interval is a busy period.
type Interval struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Availability is the output of check_availability.
type Availability struct {
	Start string `json:"start"`
	End   string `json:"end"`
	Free  bool   `json:"free"`
	// Busy are the merged busy intervals, clipped to the window, in the
	// offset of the window's start.
	Busy      []Interval `json:"busy"`
	Conflicts []Event    `json:"conflicts"`
}

// CreateArgs is the input of create_event.
type CreateArgs struct {
	Title     string   `json:"title" jsonschema:"what the event is about"`
	Start     string   `json:"start" jsonschema:"RFC 3339 date-time, e.g. 2026-03-02T10:00:00Z"`
	End       string   `json:"end" jsonschema:"RFC 3339 date-time, after start"`
	Attendees []string `json:"attendees,omitempty" jsonschema:"e-mail addresses of the attendees"`
}

// UpdateArgs is the input of update_event: fields left out are unchanged.
type UpdateArgs struct {
	ID        string    `json:"id" jsonschema:"the event's id"`
	Title     *string   `json:"title,omitempty" jsonschema:"new title"`
	Start     *string   `json:"start,omitempty" jsonschema:"new start, RFC 3339"`
	End       *string   `json:"end,omitempty" jsonschema:"new end, RFC 3339"`
	Attendees *[]string `json:"attendees,omitempty" jsonschema:"new list of attendees' e-mail addresses (replaces the old one)"`
}

// DeleteArgs is the input of delete_event.
type DeleteArgs struct {
	ID string `json:"id" jsonschema:"the event's id"`
}

// DeleteResult is the output of delete_event.
type DeleteResult struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

type calendar struct {
	store *Store
	api   *apiClient // nil: the events are in store
}

// backend keeps the events: the store, or the calendar API as the caller.
type backend interface {
	between(ctx context.Context, from, to time.Time) ([]event, error)
	create(ctx context.Context, e event) (Event, error)
	update(ctx context.Context, id string, fn func(*event) error) (Event, error)
	delete(ctx context.Context, id string) error
}

// backend returns where req's call reads and writes events.
func (c *calendar) backend(req *mcp.CallToolRequest) (backend, error) {
	if c.api == nil {
		return c.store, nil
	}
	var auth string
	if req != nil && req.Extra != nil && req.Extra.Header != nil {
		auth = req.Extra.Header.Get("Authorization")
	}
	if auth == "" {
		return nil, errNoCredential
	}
	return &apiCaller{c: c.api, auth: auth}, nil
}

func (c *calendar) listEvents(ctx context.Context, req *mcp.CallToolRequest, in ListArgs) (*mcp.CallToolResult, ListResult, error) {
	var from, to time.Time
	var err error
	if in.From != "" {
		if from, err = parseTime("from", in.From); err != nil {
			return nil, ListResult{}, err
		}
	}
	if in.To != "" {
		if to, err = parseTime("to", in.To); err != nil {
			return nil, ListResult{}, err
		}
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return nil, ListResult{}, errors.New("to must be after from")
	}
	b, err := c.backend(req)
	if err != nil {
		return nil, ListResult{}, err
	}
	evs, err := b.between(ctx, from, to)
	if err != nil {
		return nil, ListResult{}, storeError(err, "")
	}
	out := ListResult{Events: make([]Event, 0, len(evs))}
	for _, e := range evs {
		out.Events = append(out.Events, e.Event)
	}
	return nil, out, nil
}

func (c *calendar) checkAvailability(ctx context.Context, req *mcp.CallToolRequest, in AvailabilityArgs) (*mcp.CallToolResult, Availability, error) {
	start, end, err := parseRange(in.Start, in.End)
	if err != nil {
		return nil, Availability{}, err
	}
	b, err := c.backend(req)
	if err != nil {
		return nil, Availability{}, err
	}
	evs, err := b.between(ctx, start, end)
	if err != nil {
		return nil, Availability{}, storeError(err, "")
	}
	out := Availability{
		Start: in.Start, End: in.End, Free: len(evs) == 0,
		Busy: []Interval{}, Conflicts: make([]Event, 0, len(evs)),
	}
	// evs is ordered by start: merge overlapping intervals as they come.
	var bs, be time.Time
	flush := func() {
		if !bs.IsZero() {
			loc := start.Location()
			out.Busy = append(out.Busy, Interval{bs.In(loc).Format(time.RFC3339Nano), be.In(loc).Format(time.RFC3339Nano)})
		}
	}
	for _, e := range evs {
		out.Conflicts = append(out.Conflicts, e.Event)
		s, en := later(e.start, start), earlier(e.end, end)
		if !bs.IsZero() && !s.After(be) {
			be = later(be, en)
			continue
		}
		flush()
		bs, be = s, en
	}
	flush()
	return nil, out, nil
}

func (c *calendar) createEvent(ctx context.Context, req *mcp.CallToolRequest, in CreateArgs) (*mcp.CallToolResult, Event, error) {
	title, err := checkTitle(in.Title)
	if err != nil {
		return nil, Event{}, err
	}
	start, end, err := parseRange(in.Start, in.End)
	if err != nil {
		return nil, Event{}, err
	}
	att, err := checkAttendees(in.Attendees)
	if err != nil {
		return nil, Event{}, err
	}
	b, err := c.backend(req)
	if err != nil {
		return nil, Event{}, err
	}
	// The API names the owner itself, from the caller's token.
	e := event{
		Event: Event{Title: title, Start: in.Start, End: in.End, Attendees: att, Owner: owner(req)},
		start: start, end: end,
	}
	created, err := b.create(ctx, e)
	if err != nil {
		return nil, Event{}, storeError(err, "")
	}
	return nil, created, nil
}

func (c *calendar) updateEvent(ctx context.Context, req *mcp.CallToolRequest, in UpdateArgs) (*mcp.CallToolResult, Event, error) {
	if strings.TrimSpace(in.ID) == "" {
		return nil, Event{}, errors.New("id is required")
	}
	if in.Title == nil && in.Start == nil && in.End == nil && in.Attendees == nil {
		return nil, Event{}, errors.New("nothing to update: give at least one of title, start, end, attendees")
	}
	// Check what can be checked on its own before touching the store.
	var title string
	var att []string
	var err error
	if in.Title != nil {
		if title, err = checkTitle(*in.Title); err != nil {
			return nil, Event{}, err
		}
	}
	if in.Attendees != nil {
		if att, err = checkAttendees(*in.Attendees); err != nil {
			return nil, Event{}, err
		}
	}
	var start, end time.Time
	if in.Start != nil {
		if start, err = parseTime("start", *in.Start); err != nil {
			return nil, Event{}, err
		}
	}
	if in.End != nil {
		if end, err = parseTime("end", *in.End); err != nil {
			return nil, Event{}, err
		}
	}
	b, err := c.backend(req)
	if err != nil {
		return nil, Event{}, err
	}
	updated, err := b.update(ctx, in.ID, func(e *event) error {
		if in.Title != nil {
			e.Title = title
		}
		if in.Attendees != nil {
			e.Attendees = att
		}
		if in.Start != nil {
			e.Start, e.start = *in.Start, start
		}
		if in.End != nil {
			e.End, e.end = *in.End, end
		}
		if !e.end.After(e.start) {
			return badInput{fmt.Errorf("end (%s) must be after start (%s)", e.End, e.Start)}
		}
		return nil
	})
	if err != nil {
		return nil, Event{}, storeError(err, in.ID)
	}
	return nil, updated, nil
}

func (c *calendar) deleteEvent(ctx context.Context, req *mcp.CallToolRequest, in DeleteArgs) (*mcp.CallToolResult, DeleteResult, error) {
	if strings.TrimSpace(in.ID) == "" {
		return nil, DeleteResult{}, errors.New("id is required")
	}
	b, err := c.backend(req)
	if err != nil {
		return nil, DeleteResult{}, err
	}
	if err := b.delete(ctx, in.ID); err != nil {
		return nil, DeleteResult{}, storeError(err, in.ID)
	}
	return nil, DeleteResult{ID: in.ID, Deleted: true}, nil
}

// owner is the caller named by OwnerHeader, or UnknownOwner.
func owner(req *mcp.CallToolRequest) string {
	if req == nil || req.Extra == nil || req.Extra.Header == nil {
		return UnknownOwner
	}
	v := strings.TrimSpace(req.Extra.Header.Get(OwnerHeader))
	if v == "" || len(v) > maxOwnerLen || !utf8.ValidString(v) {
		return UnknownOwner
	}
	return v
}

// parseTime parses an RFC 3339 date-time, naming field in the error.
func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not an RFC 3339 date-time (e.g. 2026-03-02T10:00:00Z or 2026-03-02T11:00:00+01:00)", field, s)
	}
	return t, nil
}

// parseRange parses start and end and checks that end is after start.
func parseRange(startS, endS string) (start, end time.Time, err error) {
	if start, err = parseTime("start", startS); err != nil {
		return
	}
	if end, err = parseTime("end", endS); err != nil {
		return
	}
	if !end.After(start) {
		err = fmt.Errorf("end (%s) must be after start (%s)", endS, startS)
	}
	return
}

func checkTitle(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", errors.New("title must not be empty")
	case !utf8.ValidString(s):
		return "", errors.New("title is not valid UTF-8")
	case utf8.RuneCountInString(s) > MaxTitleLen:
		return "", fmt.Errorf("title is longer than %d characters", MaxTitleLen)
	}
	return s, nil
}

// checkAttendees checks that every entry is a bare e-mail address
// (user@domain, no display name) and drops repeats.
func checkAttendees(in []string) ([]string, error) {
	if len(in) > MaxAttendees {
		return nil, fmt.Errorf("at most %d attendees", MaxAttendees)
	}
	out := make([]string, 0, len(in))
	seen := make(map[string]bool, len(in))
	for i, s := range in {
		a, err := mail.ParseAddress(s)
		if err != nil || a.Name != "" || a.Address != s || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
			return nil, fmt.Errorf("attendees[%d]: %q is not an e-mail address (e.g. sam@tenant-a.example)", i, s)
		}
		if k := strings.ToLower(s); !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out, nil
}

// badInput marks a problem with the caller's input found inside a store
// transaction (an update that would end the event before it starts).
type badInput struct{ error }

// storeError turns a store (or API) error into the tool's error text; id
// names the event in a not-found error.
func storeError(err error, id string) error {
	var bad badInput
	var api *apiError
	switch {
	case errors.As(err, &bad):
		return bad.error
	case errors.As(err, &api):
		return api
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("no event with id %q", id)
	default:
		return fmt.Errorf("calendar storage: %w", err)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// schemaWithFormats is the input schema inferred for T with the JSON
// Schema format of some properties (or of their items, for arrays) set: a
// hint to clients; the tools check the values themselves.
func schemaWithFormats[T any](formats map[string]string) *jsonschema.Schema {
	s, err := jsonschema.For[T](nil)
	if err != nil {
		panic(fmt.Sprintf("calendar: schema for %T: %v", *new(T), err)) // a programming error, caught by the tests
	}
	for name, f := range formats {
		p := s.Properties[name]
		if p == nil {
			panic(fmt.Sprintf("calendar: %T has no property %q", *new(T), name))
		}
		if p.Items != nil {
			p = p.Items
		}
		p.Format = f
	}
	return s
}

func ptr[T any](v T) *T { return &v }
