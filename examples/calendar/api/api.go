// Package api is the downstream calendar API of mcpgate's calendar example
// (scenario S1): a tiny REST service standing in for a real calendar
// provider's API. Like one, it accepts only access tokens of its own OAuth
// provider and keeps each user's events apart; it knows nothing of MCP or of
// mcpgate.
//
// Every request needs "Authorization: Bearer <token>", where the token is
// one the provider issued. The API checks it by calling the provider's
// userinfo endpoint with it (remembering the answer briefly), and the
// caller, the owner of the events it sees and creates, is the userinfo's
// email, or its sub when there is no email.
//
//	GET    /events?from=&to=  the caller's events (overlapping the RFC 3339
//	                          window, when given), ordered by start: {"events": [...]}
//	POST   /events            {title, start, end, attendees?}: 201 and the event
//	GET    /events/{id}       one of the caller's events
//	PUT    /events/{id}       {title, start, end, attendees?}: replaces it
//	DELETE /events/{id}       204
//	GET    /healthz           200, no token needed
//
// Errors are JSON {"error": "..."}: 400 for bad input, 401 (with a
// WWW-Authenticate Bearer challenge) without a valid token, 404 for an id
// that is not one of the caller's events, 502 when the provider cannot be
// asked. Events live in memory.
package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Event is an event as the API returns it.
type Event struct {
	ID        string   `json:"id"`
	Title     string   `json:"title"`
	Start     string   `json:"start"`
	End       string   `json:"end"`
	Attendees []string `json:"attendees"`
	// Owner is the caller who created it, as the provider names them.
	Owner string `json:"owner"`
}

// EventInput is the body of POST /events and PUT /events/{id}.
type EventInput struct {
	Title     string   `json:"title"`
	Start     string   `json:"start"`
	End       string   `json:"end"`
	Attendees []string `json:"attendees,omitempty"`
}

// List is the answer to GET /events.
type List struct {
	Events []Event `json:"events"`
}

const (
	// DefaultCacheFor is how long a token's userinfo answer is reused.
	DefaultCacheFor = 30 * time.Second

	maxTitleLen  = 200
	maxAttendees = 100
	maxBody      = 64 << 10
	maxCached    = 10000
)

// Options configures New.
type Options struct {
	// UserinfoURL is the OAuth provider's userinfo endpoint (required).
	UserinfoURL string
	// CacheFor is how long a valid token's userinfo answer is reused
	// before the provider is asked again: a token revoked at the provider
	// keeps working here for up to this long. 0 means DefaultCacheFor; a
	// negative value asks the provider on every request.
	CacheFor time.Duration
	// Client calls the provider. Nil: a client with a 10 s timeout.
	Client *http.Client
	// Logger receives one line per refused token and provider failure.
	// Nil discards them.
	Logger *slog.Logger
}

// Server is the calendar API; it is an http.Handler.
type Server struct {
	userinfo string
	cacheFor time.Duration
	client   *http.Client
	log      *slog.Logger
	mux      *http.ServeMux
	now      func() time.Time

	mu     sync.Mutex
	events map[string]map[string]*stored // owner → id → event
	cache  map[[32]byte]cachedUser       // sha256(token) → who
}

type stored struct {
	Event
	start, end time.Time
}

type cachedUser struct {
	owner string
	until time.Time
}

// New returns the API.
func New(opts Options) (*Server, error) {
	if opts.UserinfoURL == "" {
		return nil, errors.New("calendar api: the provider's userinfo URL is required")
	}
	s := &Server{userinfo: opts.UserinfoURL, cacheFor: opts.CacheFor, client: opts.Client, log: opts.Logger,
		now: time.Now, events: map[string]map[string]*stored{}, cache: map[[32]byte]cachedUser{}}
	if s.cacheFor == 0 {
		s.cacheFor = DefaultCacheFor
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /events", s.authed(s.list))
	mux.HandleFunc("POST /events", s.authed(s.create))
	mux.HandleFunc("GET /events/{id}", s.authed(s.get))
	mux.HandleFunc("PUT /events/{id}", s.authed(s.replace))
	mux.HandleFunc("DELETE /events/{id}", s.authed(s.delete))
	s.mux = mux
	return s, nil
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Events returns owner's events ordered by start: the API's own record, for
// tests and demos.
func (s *Server) Events(owner string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Event{}
	for _, e := range s.sorted(owner) {
		out = append(out, e.copy())
	}
	return out
}

func (e *stored) copy() Event {
	c := e.Event
	c.Attendees = slices.Clone(e.Attendees)
	return c
}

// sorted is owner's events ordered by start, end, id; s.mu is held.
func (s *Server) sorted(owner string) []*stored {
	var out []*stored
	for _, e := range s.events[owner] {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *stored) int {
		if c := a.start.Compare(b.start); c != 0 {
			return c
		}
		if c := a.end.Compare(b.end); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// errProvider means the provider could not say whether a token is valid.
var errProvider = errors.New("the OAuth provider could not be asked")

// authed runs h for requests with a valid token, passing the caller.
func (s *Server) authed(h func(w http.ResponseWriter, r *http.Request, owner string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		token = strings.TrimSpace(token)
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="calendar-api"`)
			writeError(w, http.StatusUnauthorized, "a bearer token of the calendar's OAuth provider is required")
			return
		}
		owner, err := s.who(r.Context(), token)
		switch {
		case errors.Is(err, errProvider):
			s.log.Warn("userinfo failed", "err", err)
			writeError(w, http.StatusBadGateway, "the calendar's OAuth provider could not check the token; try again")
			return
		case err != nil:
			s.log.Info("token refused", "reason", err)
			w.Header().Set("WWW-Authenticate", `Bearer realm="calendar-api", error="invalid_token", error_description="the token is not valid at the calendar's OAuth provider"`)
			writeError(w, http.StatusUnauthorized, "the token is not valid at the calendar's OAuth provider")
			return
		}
		h(w, r, owner)
	}
}

// who returns the owner a token stands for, asking the provider's
// userinfo endpoint unless a recent answer is at hand.
func (s *Server) who(ctx context.Context, token string) (string, error) {
	key := sha256.Sum256([]byte(token))
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[key]
	s.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.owner, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.userinfo, nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errProvider, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errProvider, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", fmt.Errorf("userinfo answered %d", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("%w: userinfo answered %d", errProvider, resp.StatusCode)
	}
	var ui struct {
		Sub           string `json:"sub"`
		Email         string `json:"email"`
		EmailVerified *bool  `json:"email_verified"`
	}
	if err := json.Unmarshal(body, &ui); err != nil || ui.Sub == "" {
		return "", fmt.Errorf("%w: userinfo answer without sub", errProvider)
	}
	owner := ui.Sub
	if ui.Email != "" && (ui.EmailVerified == nil || *ui.EmailVerified) {
		owner = ui.Email
	}
	if s.cacheFor > 0 {
		s.mu.Lock()
		if len(s.cache) >= maxCached {
			for k, v := range s.cache {
				if !now.Before(v.until) {
					delete(s.cache, k)
				}
			}
			if len(s.cache) >= maxCached {
				clear(s.cache)
			}
		}
		s.cache[key] = cachedUser{owner: owner, until: now.Add(s.cacheFor)}
		s.mu.Unlock()
	}
	return owner, nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, owner string) {
	var from, to time.Time
	var err error
	q := r.URL.Query()
	if v := q.Get("from"); v != "" {
		if from, err = parseTime("from", v); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if v := q.Get("to"); v != "" {
		if to, err = parseTime("to", v); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	out := List{Events: []Event{}}
	s.mu.Lock()
	for _, e := range s.sorted(owner) {
		if (from.IsZero() || e.end.After(from)) && (to.IsZero() || e.start.Before(to)) {
			out.Events = append(out.Events, e.copy())
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, owner string) {
	e, ok := readEvent(w, r)
	if !ok {
		return
	}
	e.ID, e.Owner = newID(), owner
	s.mu.Lock()
	if s.events[owner] == nil {
		s.events[owner] = map[string]*stored{}
	}
	s.events[owner][e.ID] = e
	out := e.copy()
	s.mu.Unlock()
	s.log.Info("event created", "owner", owner, "id", e.ID)
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, owner string) {
	s.mu.Lock()
	e, ok := s.events[owner][r.PathValue("id")]
	var out Event
	if ok {
		out = e.copy()
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "no such event")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) replace(w http.ResponseWriter, r *http.Request, owner string) {
	e, ok := readEvent(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	_, found := s.events[owner][id]
	if found {
		e.ID, e.Owner = id, owner
		s.events[owner][id] = e
	}
	out := e.copy()
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "no such event")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, owner string) {
	id := r.PathValue("id")
	s.mu.Lock()
	_, found := s.events[owner][id]
	delete(s.events[owner], id)
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "no such event")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readEvent decodes and checks an EventInput.
func readEvent(w http.ResponseWriter, r *http.Request) (*stored, bool) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	var in EventInput
	if err := dec.Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "the body must be a JSON object with title, start, end and attendees: "+err.Error())
		return nil, false
	}
	e, err := check(in)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return e, true
}

func check(in EventInput) (*stored, error) {
	title := strings.TrimSpace(in.Title)
	switch {
	case title == "":
		return nil, errors.New("title must not be empty")
	case !utf8.ValidString(title) || utf8.RuneCountInString(title) > maxTitleLen:
		return nil, fmt.Errorf("title must be valid UTF-8 of at most %d characters", maxTitleLen)
	}
	start, err := parseTime("start", in.Start)
	if err != nil {
		return nil, err
	}
	end, err := parseTime("end", in.End)
	if err != nil {
		return nil, err
	}
	if !end.After(start) {
		return nil, fmt.Errorf("end (%s) must be after start (%s)", in.End, in.Start)
	}
	if len(in.Attendees) > maxAttendees {
		return nil, fmt.Errorf("at most %d attendees", maxAttendees)
	}
	att := make([]string, 0, len(in.Attendees))
	for i, a := range in.Attendees {
		if p, err := mail.ParseAddress(a); err != nil || p.Name != "" || p.Address != a {
			return nil, fmt.Errorf("attendees[%d]: %q is not an e-mail address", i, a)
		}
		if !slices.ContainsFunc(att, func(b string) bool { return strings.EqualFold(a, b) }) {
			att = append(att, a)
		}
	}
	return &stored{Event: Event{Title: title, Start: in.Start, End: in.End, Attendees: att}, start: start, end: end}, nil
}

func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not an RFC 3339 date-time", field, s)
	}
	return t, nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "evt_" + hex.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
