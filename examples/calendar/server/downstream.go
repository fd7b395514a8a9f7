package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// errNoCredential answers a call that reached a server in API mode without
// an Authorization header: there is nobody to act as.
var errNoCredential = errors.New("this call carries no calendar credential: the calendar server acts as the caller at the calendar API, " +
	"so the call must carry the caller's own token of the calendar (behind mcpgate: an upstream with credentials mode connection)")

// apiError is a failure at the calendar API, already worded for the user.
type apiError struct{ msg string }

func (e *apiError) Error() string { return e.msg }

// apiClient calls the downstream calendar API (package api).
type apiClient struct {
	base string // without a trailing slash
	hc   *http.Client
}

func newAPIClient(base string, hc *http.Client) *apiClient {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &apiClient{base: strings.TrimRight(base, "/"), hc: hc}
}

// apiCaller is the API as one caller: every request carries auth, the
// Authorization header the tool call arrived with.
type apiCaller struct {
	c    *apiClient
	auth string
}

var _ backend = (*apiCaller)(nil)

// apiInput is what the API takes for an event (it sets id and owner).
type apiInput struct {
	Title     string   `json:"title"`
	Start     string   `json:"start"`
	End       string   `json:"end"`
	Attendees []string `json:"attendees"`
}

// do sends one request; a 2xx answer is decoded into out (when not nil).
func (a *apiCaller) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.c.base+path, body)
	if err != nil {
		return &apiError{fmt.Sprintf("calendar API: %v", err)}
	}
	req.Header.Set("Authorization", a.auth)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.c.hc.Do(req)
	if err != nil {
		return &apiError{fmt.Sprintf("the calendar API could not be reached (%v); try again later", err)}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 == 2 {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return &apiError{fmt.Sprintf("the calendar API answered %s %s with something that is not an event list or event: %v", method, path, err)}
		}
		return nil
	}
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(raw, &e)
	msg := e.Error
	if msg == "" {
		msg = strings.TrimSpace(string(raw))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return &apiError{fmt.Sprintf("the calendar API refused your calendar credential (HTTP %d: %s). "+
			"Connect your calendar again (in mcpgate: disconnect and connect it on the /connections page), then try again", resp.StatusCode, msg)}
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return badInput{fmt.Errorf("the calendar API refused the event: %s", msg)}
	default:
		return &apiError{fmt.Sprintf("the calendar API failed (HTTP %d: %s); try again later", resp.StatusCode, msg)}
	}
}

// parsed fills in an API event's times; the API keeps them as given.
func parsed(e Event) (event, error) {
	if e.Attendees == nil {
		e.Attendees = []string{}
	}
	out := event{Event: e}
	var err error
	if out.start, err = time.Parse(time.RFC3339, e.Start); err != nil {
		return event{}, &apiError{fmt.Sprintf("the calendar API returned event %s with a bad start %q", e.ID, e.Start)}
	}
	if out.end, err = time.Parse(time.RFC3339, e.End); err != nil {
		return event{}, &apiError{fmt.Sprintf("the calendar API returned event %s with a bad end %q", e.ID, e.End)}
	}
	return out, nil
}

func (a *apiCaller) between(ctx context.Context, from, to time.Time) ([]event, error) {
	q := url.Values{}
	if !from.IsZero() {
		q.Set("from", from.Format(time.RFC3339Nano))
	}
	if !to.IsZero() {
		q.Set("to", to.Format(time.RFC3339Nano))
	}
	path := "/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var list struct {
		Events []Event `json:"events"`
	}
	if err := a.do(ctx, http.MethodGet, path, nil, &list); err != nil {
		return nil, err
	}
	out := make([]event, 0, len(list.Events))
	for _, e := range list.Events {
		pe, err := parsed(e)
		if err != nil {
			return nil, err
		}
		out = append(out, pe)
	}
	return out, nil
}

func (a *apiCaller) create(ctx context.Context, e event) (Event, error) {
	var out Event
	err := a.do(ctx, http.MethodPost, "/events", apiInput{Title: e.Title, Start: e.Start, End: e.End, Attendees: e.Attendees}, &out)
	if out.Attendees == nil {
		out.Attendees = []string{}
	}
	return out, err
}

// update reads the event, applies fn and writes it back (last writer wins).
func (a *apiCaller) update(ctx context.Context, id string, fn func(*event) error) (Event, error) {
	path := "/events/" + url.PathEscape(id)
	var cur Event
	if err := a.do(ctx, http.MethodGet, path, nil, &cur); err != nil {
		return Event{}, err
	}
	e, err := parsed(cur)
	if err != nil {
		return Event{}, err
	}
	if err := fn(&e); err != nil {
		return Event{}, err
	}
	var out Event
	err = a.do(ctx, http.MethodPut, path, apiInput{Title: e.Title, Start: e.Start, End: e.End, Attendees: e.Attendees}, &out)
	if out.Attendees == nil {
		out.Attendees = []string{}
	}
	return out, err
}

func (a *apiCaller) delete(ctx context.Context, id string) error {
	return a.do(ctx, http.MethodDelete, "/events/"+url.PathEscape(id), nil, nil)
}
