package safefetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests talk only to httptest servers on loopback. Loopback is
// refused by default; a test that wants to reach its server says so with
// an explicit allowance.
var loopbackOnly = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// server is a TLS test server on loopback counting requests per path.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{hits: map[string]int{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func (s *server) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.hits {
		n += v
	}
	return n
}

func (s *server) port() string {
	u, _ := url.Parse(s.URL)
	return u.Port()
}

func (s *server) tlsConfig() *tls.Config {
	return s.Client().Transport.(*http.Transport).TLSClientConfig
}

// names is a fake DNS: host → addresses.
func names(m map[string]string) func(context.Context, string, string) ([]netip.Addr, error) {
	return func(_ context.Context, _, host string) ([]netip.Addr, error) {
		a, ok := m[host]
		if !ok {
			return nil, fmt.Errorf("no such host %q", host)
		}
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
}

func newFetcher(t *testing.T, s *server, mod func(*Options)) *Fetcher {
	t.Helper()
	o := &Options{TLSConfig: s.tlsConfig(), Timeout: 2 * time.Second}
	if mod != nil {
		mod(o)
	}
	f, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.CloseIdleConnections)
	return f
}

func jsonHandler(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}
}

// TestGuardRefusesLoopback: without an allowance nothing on loopback is
// reached, in any spelling, and the server never sees a request.
func TestGuardRefusesLoopback(t *testing.T) {
	s := newServer(t, jsonHandler(`{}`))
	f := newFetcher(t, s, func(o *Options) {
		o.LookupNetIP = names(map[string]string{"example.com": "127.0.0.1", "localhost": "127.0.0.1"})
	})
	p := s.port()
	for _, u := range []string{
		s.URL + "/a",
		"https://example.com:" + p + "/a", // a public-looking name resolving to loopback (DNS rebinding)
		"https://localhost:" + p + "/a",
		"https://[::1]:" + p + "/a",
		"https://[::ffff:127.0.0.1]:" + p + "/a",
		"https://0.0.0.0:" + p + "/a",
	} {
		if _, err := f.Get(context.Background(), Request{URL: u}); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("Get(%s) = %v, want ErrForbiddenAddress", u, err)
		}
	}
	if n := s.total(); n != 0 {
		t.Errorf("the server was reached %d times", n)
	}
	// The allowance, not something else, made the difference.
	f = newFetcher(t, s, func(o *Options) {
		o.Allow = loopbackOnly
		o.LookupNetIP = names(map[string]string{"example.com": "127.0.0.1"})
	})
	if _, err := f.Get(context.Background(), Request{URL: "https://example.com:" + p + "/a"}); err != nil {
		t.Fatalf("with the loopback allowance: %v", err)
	}
}

// TestDNSRebinding: the address is checked when connecting, so a name
// that resolves to a public address first and to loopback next is refused
// on the second fetch.
func TestDNSRebinding(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		jsonHandler(`{}`)(w, r)
	})
	var mu sync.Mutex
	answer := "127.0.0.1"
	lookup := func(context.Context, string, string) ([]netip.Addr, error) {
		mu.Lock()
		defer mu.Unlock()
		return []netip.Addr{netip.MustParseAddr(answer)}, nil
	}
	// 127.0.0.1 stands in for "public" here: it is the allowance.
	f := newFetcher(t, s, func(o *Options) { o.Allow = loopbackOnly; o.LookupNetIP = lookup })
	u := "https://example.com:" + s.port() + "/keys"
	if _, err := f.Get(context.Background(), Request{URL: u}); err != nil {
		t.Fatal(err)
	}
	f.CloseIdleConnections()
	mu.Lock()
	answer = "127.0.0.2" // the rebinding answer: not allowed
	mu.Unlock()
	if _, err := f.Get(context.Background(), Request{URL: u}); !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("after rebinding: %v, want ErrForbiddenAddress", err)
	}
}

func TestRedirects(t *testing.T) {
	var s *server
	s = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		p := s.port()
		switch r.URL.Path {
		case "/to-private":
			http.Redirect(w, r, "https://internal.example:"+p+"/secret", http.StatusFound)
		case "/to-private-literal":
			http.Redirect(w, r, "https://127.0.0.2:"+p+"/secret", http.StatusFound)
		case "/to-metadata":
			http.Redirect(w, r, "https://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/to-http":
			http.Redirect(w, r, "http://example.com:"+p+"/ok", http.StatusFound)
		case "/hop1":
			http.Redirect(w, r, "/hop2", http.StatusFound)
		case "/hop2":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		default:
			jsonHandler(`{"ok":true}`)(w, r)
		}
	})
	f := newFetcher(t, s, func(o *Options) {
		o.Allow = loopbackOnly
		o.LookupNetIP = names(map[string]string{"example.com": "127.0.0.1", "internal.example": "10.1.2.3"})
	})
	base := "https://example.com:" + s.port()
	tests := []struct {
		path string
		max  int
		want error // nil: success
	}{
		{"/to-private", 3, ErrForbiddenAddress},
		{"/to-private-literal", 3, ErrForbiddenAddress},
		{"/to-metadata", 3, ErrForbiddenAddress},
		{"/to-http", 3, ErrScheme},
		{"/hop1", 0, ErrRedirect},
		{"/hop1", 1, ErrRedirect},
		{"/hop1", 2, nil},
		{"/loop", 5, ErrRedirect},
	}
	for _, tc := range tests {
		_, err := f.Get(context.Background(), Request{URL: base + tc.path, MaxRedirects: tc.max})
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s (max %d): %v, want %v", tc.path, tc.max, err, tc.want)
		}
	}
	if n := s.count("/secret"); n != 0 {
		t.Errorf("a private redirect target was reached %d times", n)
	}
	if n := s.count("/loop"); n != 6 {
		t.Errorf("redirect loop: %d requests, want 6 (1 + 5 hops)", n)
	}
}

func TestSchemes(t *testing.T) {
	f, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"http://example.com/a", "ftp://example.com/a", "file:///etc/passwd", "/relative", "https://user@example.com/a", "gopher://x/"} {
		if _, err := f.Get(context.Background(), Request{URL: u}); !errors.Is(err, ErrScheme) {
			t.Errorf("Get(%q) = %v, want ErrScheme", u, err)
		}
	}
}

func TestSizeLimit(t *testing.T) {
	big := `{"pad":"` + strings.Repeat("x", 4000) + `"}`
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/chunked" {
			for i := 0; i < len(big); i += 100 {
				_, _ = w.Write([]byte(big[i:min(i+100, len(big))]))
				w.(http.Flusher).Flush()
			}
			return
		}
		_, _ = w.Write([]byte(big))
	})
	f := newFetcher(t, s, func(o *Options) { o.Allow = loopbackOnly })
	for _, p := range []string{"/declared", "/chunked"} {
		if _, err := f.Get(context.Background(), Request{URL: s.URL + p, MaxBytes: 1024}); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v, want ErrTooLarge", p, err)
		}
	}
	if _, err := f.Get(context.Background(), Request{URL: s.URL + "/declared", MaxBytes: 8192}); err != nil {
		t.Errorf("within the limit: %v", err)
	}
}

// TestSlowBody: a server that sends headers at once and then trickles the
// body is cut off at the total time limit.
func TestSlowBody(t *testing.T) {
	stop := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		for {
			_, _ = w.Write([]byte(" "))
			w.(http.Flusher).Flush()
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	t.Cleanup(func() { close(stop) }) // before the server closes
	f := newFetcher(t, s, func(o *Options) { o.Allow = loopbackOnly; o.Timeout = 200 * time.Millisecond })
	start := time.Now()
	r, err := f.Get(context.Background(), Request{URL: s.URL + "/slow"})
	if r != nil {
		t.Logf("body %q", r.Body)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var testNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestCache(t *testing.T) {
	tests := []struct {
		name   string
		header string
		steps  []time.Duration
		want   int
	}{
		{"max-age hit", "max-age=300", []time.Duration{0, 299 * time.Second}, 1},
		{"max-age expiry", "max-age=300", []time.Duration{301 * time.Second}, 2},
		{"no-store", "no-store", []time.Duration{0, 0}, 3},
		{"floor", "max-age=0", []time.Duration{30 * time.Second, 31 * time.Second}, 2},
		{"ceiling", "max-age=999999", []time.Duration{59 * time.Minute, 2 * time.Minute}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", tc.header)
				jsonHandler(`{}`)(w, r)
			})
			clock := &fakeClock{t: testNow}
			f := newFetcher(t, s, func(o *Options) {
				o.Allow, o.Now, o.MinTTL, o.MaxTTL = loopbackOnly, clock.Now, time.Minute, time.Hour
			})
			get := func() *Response {
				r, err := f.Get(context.Background(), Request{URL: s.URL + "/doc"})
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			get()
			var last *Response
			for _, d := range tc.steps {
				clock.Add(d)
				last = get()
			}
			if n := s.count("/doc"); n != tc.want {
				t.Errorf("server called %d times, want %d", n, tc.want)
			}
			if tc.want == 1 && !last.Cached {
				t.Error("a cache hit is not marked Cached")
			}
		})
	}
}

func TestCacheBounded(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		jsonHandler(`{}`)(w, r)
	})
	f := newFetcher(t, s, func(o *Options) { o.Allow = loopbackOnly; o.CacheEntries = 2 })
	for _, p := range []string{"/a", "/b", "/a", "/c", "/a", "/b"} {
		if _, err := f.Get(context.Background(), Request{URL: s.URL + p}); err != nil {
			t.Fatal(err)
		}
	}
	// a, b cached; a hit; c evicts b; a hit; b fetched again.
	if got := [3]int{s.count("/a"), s.count("/b"), s.count("/c")}; got != [3]int{1, 2, 1} {
		t.Errorf("fetches = %v, want [1 2 1]", got)
	}
}

func TestConcurrentGetsShareOneFetch(t *testing.T) {
	release := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "no-store")
		jsonHandler(`{}`)(w, r)
	})
	f := newFetcher(t, s, func(o *Options) { o.Allow = loopbackOnly })
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := f.Get(context.Background(), Request{URL: s.URL + "/doc"})
			errs <- err
		})
	}
	for s.count("/doc") == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the others join the call in flight
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.count("/doc"); n > 2 {
		t.Errorf("server called %d times for 8 concurrent Gets", n)
	}
}

func TestStatus(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	f := newFetcher(t, s, func(o *Options) { o.Allow = loopbackOnly })
	_, err := f.Get(context.Background(), Request{URL: s.URL + "/x"})
	var se *StatusError
	if !errors.Is(err, ErrStatus) || !errors.As(err, &se) || se.Code != 404 || errors.Is(err, ErrRedirect) {
		t.Errorf("err = %v", err)
	}
}

func TestCacheTTL(t *testing.T) {
	date := testNow.Format(http.TimeFormat)
	tests := []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{}, time.Minute},
		{http.Header{"Cache-Control": {"max-age=120"}}, 2 * time.Minute},
		{http.Header{"Cache-Control": {`max-age="120"`}}, 2 * time.Minute},
		{http.Header{"Cache-Control": {"public", "MAX-AGE=120"}}, 2 * time.Minute},
		{http.Header{"Cache-Control": {"max-age=120, no-store"}}, 0},
		{http.Header{"Cache-Control": {"No-Store"}}, 0},
		{http.Header{"Cache-Control": {"no-cache"}}, 0},
		{http.Header{"Cache-Control": {"max-age=-5"}}, time.Minute},
		{http.Header{"Cache-Control": {"max-age=abc"}, "Expires": {testNow.Add(30 * time.Minute).Format(http.TimeFormat)}, "Date": {date}}, 30 * time.Minute},
		{http.Header{"Cache-Control": {"max-age=99999999999999"}}, time.Hour},
		{http.Header{"Cache-Control": {"max-age=600"}, "Age": {"590"}}, time.Minute},
		{http.Header{"Expires": {testNow.Add(-time.Hour).Format(http.TimeFormat)}, "Date": {date}}, time.Minute},
		{http.Header{"Expires": {"0"}}, time.Minute},
		{http.Header{"Expires": {testNow.Add(48 * time.Hour).Format(http.TimeFormat)}, "Date": {date}}, time.Hour},
		{http.Header{"Cache-Control": {"max-age=120"}, "Expires": {testNow.Add(30 * time.Minute).Format(http.TimeFormat)}}, 2 * time.Minute},
	}
	for _, tc := range tests {
		if got := CacheTTL(tc.h, testNow, time.Minute, time.Hour); got != tc.want {
			t.Errorf("CacheTTL(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestNewOptions(t *testing.T) {
	if _, err := New(&Options{MinTTL: time.Hour, MaxTTL: time.Minute}); err == nil {
		t.Error("MaxTTL < MinTTL accepted")
	}
}

// TestMaxInFlight: beyond MaxInFlight distinct fetches at once, Get fails
// fast with ErrBusy instead of queueing; a Get of a URL already being
// fetched joins it.
func TestMaxInFlight(t *testing.T) {
	release := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		jsonHandler(`{}`)(w, r)
	})
	f := newFetcher(t, s, func(o *Options) { o.Allow = loopbackOnly; o.MaxInFlight = 1 })
	done := make(chan error, 2)
	go func() { _, err := f.Get(context.Background(), Request{URL: s.URL + "/a"}); done <- err }()
	for s.count("/a") == 0 {
		time.Sleep(time.Millisecond)
	}
	go func() { _, err := f.Get(context.Background(), Request{URL: s.URL + "/a"}); done <- err }() // joins
	if _, err := f.Get(context.Background(), Request{URL: s.URL + "/b"}); !errors.Is(err, ErrBusy) {
		t.Errorf("second distinct fetch: %v, want ErrBusy", err)
	}
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("fetch in flight: %v", err)
		}
	}
	if _, err := f.Get(context.Background(), Request{URL: s.URL + "/b"}); err != nil {
		t.Errorf("after the slot freed: %v", err)
	}
}
