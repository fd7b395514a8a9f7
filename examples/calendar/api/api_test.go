package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// provider is a stand-in userinfo endpoint: token → claims.
type provider struct {
	users map[string]map[string]any
	calls atomic.Int32
	down  atomic.Bool
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.calls.Add(1)
	if p.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	claims, ok := p.users[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	_ = json.NewEncoder(w).Encode(claims)
}

func start(t *testing.T, cacheFor time.Duration) (*Server, string, *provider) {
	t.Helper()
	p := &provider{users: map[string]map[string]any{
		"sam-token":     {"sub": "u-sam", "email": "sam@tenant-a.example", "email_verified": true},
		"riley-token":   {"sub": "u-riley", "email": "riley@tenant-a.example"},
		"noemail-token": {"sub": "u-robot"},
		"unverified":    {"sub": "u-eve", "email": "ceo@tenant-a.example", "email_verified": false},
	}}
	ps := httptest.NewServer(p)
	t.Cleanup(ps.Close)
	s, err := New(Options{UserinfoURL: ps.URL + "/userinfo", CacheFor: cacheFor})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL, p
}

func do(t *testing.T, method, u, token string, body any) (int, []byte, http.Header) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, u, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes(), resp.Header
}

var planning = EventInput{Title: "Planning", Start: "2026-03-02T10:00:00Z", End: "2026-03-02T11:00:00Z", Attendees: []string{"riley@tenant-a.example"}}

func TestTokenRequired(t *testing.T) {
	s, base, _ := start(t, 0)
	for _, tok := range []string{"", "forged"} {
		code, body, h := do(t, http.MethodPost, base+"/events", tok, planning)
		if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer ") || !strings.Contains(string(body), `"error"`) {
			t.Errorf("token %q: %d %q %s", tok, code, h.Get("WWW-Authenticate"), body)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/events", nil)
	req.SetBasicAuth("sam", "sam")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("basic auth: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	if got := s.Events("sam@tenant-a.example"); len(got) != 0 {
		t.Errorf("refused requests stored %v", got)
	}
	if code, _, _ := do(t, http.MethodGet, base+"/healthz", "", nil); code != 200 {
		t.Errorf("healthz: %d", code)
	}
}

func TestOwnerFromProvider(t *testing.T) {
	s, base, _ := start(t, 0)
	for tok, want := range map[string]string{
		"sam-token": "sam@tenant-a.example", "riley-token": "riley@tenant-a.example",
		"noemail-token": "u-robot", "unverified": "u-eve",
	} {
		code, body, _ := do(t, http.MethodPost, base+"/events", tok, planning)
		var e Event
		_ = json.Unmarshal(body, &e)
		if code != http.StatusCreated || e.Owner != want || e.Title != "Planning" || !strings.HasPrefix(e.ID, "evt_") {
			t.Errorf("%s: %d %s, want owner %s", tok, code, body, want)
		}
		if got := s.Events(want); len(got) != 1 || got[0].ID != e.ID || got[0].Owner != want {
			t.Errorf("%s: store has %v", want, got)
		}
	}
}

func TestPerOwner(t *testing.T) {
	_, base, _ := start(t, 0)
	mk := func(tok, title, st, en string) Event {
		code, body, _ := do(t, http.MethodPost, base+"/events", tok, EventInput{Title: title, Start: st, End: en})
		var e Event
		if err := json.Unmarshal(body, &e); err != nil || code != http.StatusCreated {
			t.Fatalf("create %s: %d %s", title, code, body)
		}
		return e
	}
	late := mk("sam-token", "late", "2026-03-02T15:00:00Z", "2026-03-02T16:00:00Z")
	early := mk("sam-token", "early", "2026-03-02T09:00:00+01:00", "2026-03-02T09:30:00+01:00")
	other := mk("riley-token", "riley's", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")
	list := func(tok, query string) []string {
		code, body, _ := do(t, http.MethodGet, base+"/events"+query, tok, nil)
		var l List
		if err := json.Unmarshal(body, &l); err != nil || code != 200 {
			t.Fatalf("list: %d %s", code, body)
		}
		var out []string
		for _, e := range l.Events {
			out = append(out, e.Title)
		}
		return out
	}
	if got := list("sam-token", ""); strings.Join(got, ",") != "early,late" {
		t.Errorf("sam's list = %v", got)
	}
	if got := list("sam-token", "?from=2026-03-02T12:00:00Z"); strings.Join(got, ",") != "late" {
		t.Errorf("sam's list from noon = %v", got)
	}
	if got := list("sam-token", "?to=2026-03-02T08:00:00Z"); len(got) != 0 {
		t.Errorf("sam's list to 08:00Z = %v (early starts at 08:00Z)", got)
	}
	if got := list("riley-token", ""); strings.Join(got, ",") != "riley's" {
		t.Errorf("riley's list = %v", got)
	}
	if code, _, _ := do(t, http.MethodGet, base+"/events?from=noon", "sam-token", nil); code != 400 {
		t.Errorf("bad from: %d", code)
	}
	// Riley's event does not exist for sam.
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		if code, _, _ := do(t, m, base+"/events/"+other.ID, "sam-token", planning); code != http.StatusNotFound {
			t.Errorf("sam %s riley's event: %d", m, code)
		}
	}
	// Replace and delete one's own.
	code, body, _ := do(t, http.MethodPut, base+"/events/"+early.ID, "sam-token", EventInput{Title: "earlier", Start: "2026-03-02T07:00:00Z", End: "2026-03-02T07:30:00Z"})
	var e Event
	_ = json.Unmarshal(body, &e)
	if code != 200 || e.ID != early.ID || e.Title != "earlier" || e.Owner != "sam@tenant-a.example" || e.Attendees == nil {
		t.Errorf("replace: %d %s", code, body)
	}
	if code, _, _ := do(t, http.MethodDelete, base+"/events/"+late.ID, "sam-token", nil); code != http.StatusNoContent {
		t.Errorf("delete: %d", code)
	}
	if code, _, _ := do(t, http.MethodGet, base+"/events/"+late.ID, "sam-token", nil); code != http.StatusNotFound {
		t.Errorf("get deleted: %d", code)
	}
	if got := list("sam-token", ""); strings.Join(got, ",") != "earlier" {
		t.Errorf("after replace and delete: %v", got)
	}
}

func TestValidation(t *testing.T) {
	_, base, _ := start(t, 0)
	for _, tc := range []struct {
		body any
		want string
	}{
		{EventInput{Title: " ", Start: planning.Start, End: planning.End}, "title"},
		{EventInput{Title: "x", Start: "10:00", End: planning.End}, "start"},
		{EventInput{Title: "x", Start: planning.End, End: planning.Start}, "must be after"},
		{EventInput{Title: "x", Start: planning.Start, End: planning.End, Attendees: []string{"Sam <sam@x.example>"}}, "attendees[0]"},
		{map[string]any{"title": "x", "start": planning.Start, "end": planning.End, "owner": "ceo@tenant-a.example"}, "unknown field"},
		{"not an object", "JSON object"},
	} {
		code, body, _ := do(t, http.MethodPost, base+"/events", "sam-token", tc.body)
		if code != 400 || !strings.Contains(string(body), tc.want) {
			t.Errorf("%v: %d %s, want 400 with %q", tc.body, code, body, tc.want)
		}
	}
}

func TestUserinfoCache(t *testing.T) {
	s, base, p := start(t, time.Minute)
	var clock atomic.Int64 // the test's clock: the server reads it on its own goroutines
	clock.Store(time.Now().UnixNano())
	s.now = func() time.Time { return time.Unix(0, clock.Load()) }
	for range 3 {
		if code, body, _ := do(t, http.MethodGet, base+"/events", "sam-token", nil); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
	}
	if n := p.calls.Load(); n != 1 {
		t.Errorf("userinfo asked %d times for three requests within a minute, want 1", n)
	}
	// Refused tokens are not cached: each is asked about.
	do(t, http.MethodGet, base+"/events", "forged", nil)
	do(t, http.MethodGet, base+"/events", "forged", nil)
	if n := p.calls.Load(); n != 3 {
		t.Errorf("userinfo calls = %d, want 3", n)
	}
	// After the cache time, the provider decides again; when it cannot, 502.
	clock.Add(int64(2 * time.Minute))
	p.down.Store(true)
	if code, _, _ := do(t, http.MethodGet, base+"/events", "sam-token", nil); code != http.StatusBadGateway {
		t.Errorf("provider down: %d, want 502", code)
	}
}

func TestNoCache(t *testing.T) {
	_, base, p := start(t, -1)
	do(t, http.MethodGet, base+"/events", "sam-token", nil)
	do(t, http.MethodGet, base+"/events", "sam-token", nil)
	if n := p.calls.Load(); n != 2 {
		t.Errorf("userinfo calls = %d, want 2", n)
	}
}

func TestNewNeedsUserinfo(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a userinfo URL succeeded")
	}
}
