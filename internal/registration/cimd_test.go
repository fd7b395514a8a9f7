package registration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/safefetch"
	"github.com/mcpgate/mcpgate/internal/store"
)

// fakeClock is a settable clock for cache expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// docServer serves client metadata documents over TLS on loopback and
// counts requests per path.
type docServer struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newDocServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request, base string)) *docServer {
	t.Helper()
	s := &docServer{hits: map[string]int{}}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		h(w, r, s.URL)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *docServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func (s *docServer) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.hits {
		n += v
	}
	return n
}

// document returns a valid metadata document for id with overrides
// applied (a nil value deletes the member).
func document(id string, over map[string]any) []byte {
	d := map[string]any{
		"client_id":                  id,
		"client_name":                "Example MCP Client",
		"client_uri":                 "https://app.example",
		"redirect_uris":              []string{"http://127.0.0.1:3000/callback", "https://app.example/cb"},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	}
	for k, v := range over {
		if v == nil {
			delete(d, k)
		} else {
			d[k] = v
		}
	}
	b, _ := json.Marshal(d)
	return b
}

func serveJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// newTestResolver returns a resolver whose fetcher trusts ts's
// certificate and may reach loopback: an explicit test allowance.
func newTestResolver(t *testing.T, ts *docServer, mod func(*ResolverOptions, *safefetch.Options)) *Resolver {
	t.Helper()
	fo := &safefetch.Options{
		TLSConfig: ts.Client().Transport.(*http.Transport).TLSClientConfig,
		Allow:     []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}
	o := &ResolverOptions{Allowlist: mustAllowlist(t, "loopback", "https://app.example/cb")}
	if mod != nil {
		mod(o, fo)
	}
	f, err := safefetch.New(fo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.CloseIdleConnections)
	o.Fetcher = f
	r, err := NewResolver(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResolveSuccess(t *testing.T) {
	ts := newDocServer(t, func(w http.ResponseWriter, r *http.Request, base string) {
		if r.Method != http.MethodGet || r.Header.Get("Accept") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		serveJSON(w, document(base+r.URL.Path, map[string]any{"scope": "mcp:tools", "x_ext": true}))
	})
	clock := &fakeClock{t: testNow}
	r := newTestResolver(t, ts, func(o *ResolverOptions, _ *safefetch.Options) { o.Now = clock.Now })
	id := ts.URL + "/oauth/client.json"
	c, err := r.Resolve(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != id || c.Kind != store.ClientMetadata || c.Name != "Example MCP Client" ||
		c.TokenEndpointAuthMethod != "none" || c.SecretHash != "" || c.Scope != "mcp:tools" ||
		!slices.Equal(c.RedirectURIs, []string{"http://127.0.0.1:3000/callback", "https://app.example/cb"}) ||
		!slices.Equal(c.GrantTypes, []string{"authorization_code", "refresh_token"}) ||
		!slices.Equal(c.ResponseTypes, []string{"code"}) || !c.CreatedAt.Equal(testNow) {
		t.Errorf("client = %+v", c)
	}
	var md map[string]any
	if err := json.Unmarshal(c.Metadata, &md); err != nil || md["x_ext"] != true {
		t.Errorf("Metadata = %s", c.Metadata)
	}
}

func TestResolveDefaultsAndPrivateKeyJWT(t *testing.T) {
	ts := newDocServer(t, func(w http.ResponseWriter, r *http.Request, base string) {
		switch r.URL.Path {
		case "/minimal.json":
			serveJSON(w, []byte(fmt.Sprintf(`{"client_id":%q,"redirect_uris":["http://localhost:8080/cb"]}`, base+r.URL.Path)))
		case "/pkjwt.json":
			serveJSON(w, document(base+r.URL.Path, map[string]any{
				"token_endpoint_auth_method": "private_key_jwt",
				"jwks_uri":                   "https://app.example/jwks.json",
			}))
		}
	})
	r := newTestResolver(t, ts, nil)
	c, err := r.Resolve(context.Background(), ts.URL+"/minimal.json")
	if err != nil {
		t.Fatal(err)
	}
	// No auth method means a public client here: a metadata document
	// cannot carry a secret.
	if c.TokenEndpointAuthMethod != "none" || !slices.Equal(c.GrantTypes, []string{"authorization_code"}) || !slices.Equal(c.ResponseTypes, []string{"code"}) {
		t.Errorf("defaults: %+v", c)
	}
	c, err = r.Resolve(context.Background(), ts.URL+"/pkjwt.json")
	if err != nil {
		t.Fatal(err)
	}
	if c.TokenEndpointAuthMethod != "private_key_jwt" || c.JWKSURI != "https://app.example/jwks.json" {
		t.Errorf("private_key_jwt: %+v", c)
	}
}

func TestResolveErrors(t *testing.T) {
	type handler = func(w http.ResponseWriter, r *http.Request, id string)
	withDoc := func(over map[string]any) handler {
		return func(w http.ResponseWriter, _ *http.Request, id string) { serveJSON(w, document(id, over)) }
	}
	tests := []struct {
		name    string
		h       handler
		reason  error
		descHas string
	}{
		{name: "client_id mismatch", h: func(w http.ResponseWriter, _ *http.Request, id string) {
			serveJSON(w, document(strings.TrimSuffix(id, ".json")+"-other.json", nil))
		}, reason: ErrInvalidDocument, descHas: "does not match"},
		{name: "client_id trailing slash", h: func(w http.ResponseWriter, _ *http.Request, id string) {
			serveJSON(w, document(id+"/", nil))
		}, reason: ErrInvalidDocument, descHas: "does not match"},
		{name: "client_id case differs", h: func(w http.ResponseWriter, _ *http.Request, id string) {
			serveJSON(w, document(strings.ToUpper(id[:5])+id[5:], nil))
		}, reason: ErrInvalidDocument},
		{name: "client_id missing", h: withDoc(map[string]any{"client_id": nil}), reason: ErrInvalidDocument},
		{name: "client_id not a string", h: withDoc(map[string]any{"client_id": 7}), reason: ErrInvalidDocument},
		{name: "redirect not allowed", h: withDoc(map[string]any{"redirect_uris": []string{"https://evil.example/cb"}}), reason: ErrRedirectURINotAllowed, descHas: "evil.example"},
		{name: "one redirect not allowed", h: withDoc(map[string]any{"redirect_uris": []string{"https://app.example/cb", "https://app.example/cb2"}}), reason: ErrRedirectURINotAllowed},
		{name: "javascript redirect", h: withDoc(map[string]any{"redirect_uris": []string{"javascript:alert(1)"}}), reason: ErrRedirectURINotAllowed},
		{name: "redirect_uris missing", h: withDoc(map[string]any{"redirect_uris": nil}), reason: ErrInvalidDocument},
		{name: "redirect_uris missing, client_credentials", h: withDoc(map[string]any{"redirect_uris": nil, "grant_types": []string{"client_credentials"}, "response_types": nil, "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://app.example/jwks"}), reason: ErrInvalidDocument, descHas: "client_credentials"},
		// Issue 8, finding 2: a metadata document may not declare a machine
		// grant with its own keys; only the operator registers those.
		{name: "client_credentials with jwks", h: withDoc(map[string]any{"grant_types": []string{"authorization_code", "client_credentials"}, "token_endpoint_auth_method": "private_key_jwt", "jwks": map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}}}}), reason: ErrInvalidDocument, descHas: "client_credentials"},
		{name: "client_credentials only, private_key_jwt", h: withDoc(map[string]any{"grant_types": []string{"client_credentials"}, "response_types": nil, "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://app.example/jwks"}), reason: ErrInvalidDocument, descHas: "operator"},
		{name: "token exchange grant", h: withDoc(map[string]any{"grant_types": []string{"authorization_code", "urn:ietf:params:oauth:grant-type:token-exchange"}}), reason: ErrInvalidDocument},
		{name: "jwks without private_key_jwt", h: withDoc(map[string]any{"jwks_uri": "https://app.example/jwks"}), reason: ErrInvalidDocument, descHas: "private_key_jwt"},
		{name: "client_secret", h: withDoc(map[string]any{"client_secret": "x"}), reason: ErrInvalidDocument, descHas: "client_secret"},
		{name: "client_secret_expires_at", h: withDoc(map[string]any{"client_secret_expires_at": 0}), reason: ErrInvalidDocument},
		{name: "client_secret_basic", h: withDoc(map[string]any{"token_endpoint_auth_method": "client_secret_basic"}), reason: ErrInvalidDocument},
		{name: "client_secret_post", h: withDoc(map[string]any{"token_endpoint_auth_method": "client_secret_post"}), reason: ErrInvalidDocument},
		{name: "private_key_jwt without keys", h: withDoc(map[string]any{"token_endpoint_auth_method": "private_key_jwt"}), reason: ErrInvalidDocument},
		{name: "implicit", h: withDoc(map[string]any{"response_types": []string{"token"}}), reason: ErrInvalidDocument},
		{name: "password grant", h: withDoc(map[string]any{"grant_types": []string{"password"}}), reason: ErrInvalidDocument},
		{name: "client_credentials public", h: withDoc(map[string]any{"grant_types": []string{"authorization_code", "client_credentials"}}), reason: ErrInvalidDocument},
		{name: "not JSON", h: func(w http.ResponseWriter, _ *http.Request, _ string) { serveJSON(w, []byte("<html>")) }, reason: ErrInvalidDocument},
		// One reading per document: the first client_id another reader
		// would take is not the URL's.
		{name: "repeated client_id", h: func(w http.ResponseWriter, _ *http.Request, id string) {
			serveJSON(w, []byte(`{"client_id":"https://evil.example/client.json","client_id":"`+id+`","redirect_uris":["https://app.example/cb"]}`))
		}, reason: ErrInvalidDocument, descHas: `"client_id" appears more than once`},
		{name: "repeated redirect_uris", h: func(w http.ResponseWriter, _ *http.Request, id string) {
			serveJSON(w, []byte(`{"client_id":"`+id+`","redirect_uris":["https://evil.example/cb"],"redirect_uris":["https://app.example/cb"]}`))
		}, reason: ErrInvalidDocument},
		{name: "JSON array", h: func(w http.ResponseWriter, _ *http.Request, _ string) { serveJSON(w, []byte("[]")) }, reason: ErrInvalidDocument},
		{name: "wrong content type", h: func(w http.ResponseWriter, _ *http.Request, id string) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write(document(id, nil))
		}, reason: ErrInvalidDocument, descHas: "application/json"},
		{name: "not found", h: func(w http.ResponseWriter, r *http.Request, _ string) { http.NotFound(w, r) }, reason: ErrFetch, descHas: "404"},
		{name: "server error", h: func(w http.ResponseWriter, _ *http.Request, _ string) { w.WriteHeader(500) }, reason: ErrFetch},
		{name: "too large, declared", h: withDoc(map[string]any{"pad": strings.Repeat("x", 2000)}), reason: ErrTooLarge},
		{name: "too large, chunked", h: func(w http.ResponseWriter, _ *http.Request, id string) {
			w.Header().Set("Content-Type", "application/json")
			doc := document(id, map[string]any{"pad": strings.Repeat("x", 2000)})
			for i := 0; i < len(doc); i += 100 {
				_, _ = w.Write(doc[i:min(i+100, len(doc))])
				w.(http.Flusher).Flush()
			}
		}, reason: ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newDocServer(t, func(w http.ResponseWriter, r *http.Request, base string) { tc.h(w, r, base+r.URL.Path) })
			r := newTestResolver(t, ts, func(o *ResolverOptions, _ *safefetch.Options) { o.MaxBytes = 1024 })
			_, err := r.Resolve(context.Background(), ts.URL+"/client.json")
			var re *ResolveError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *ResolveError", err)
			}
			if !errors.Is(err, tc.reason) {
				t.Errorf("err = %v, want reason %v", err, tc.reason)
			}
			if !strings.Contains(err.Error(), tc.reason.Error()) || !strings.Contains(err.Error(), re.ClientID) {
				t.Errorf("Error() = %q lacks the reason or client_id", err.Error())
			}
			if d := re.Description(); !strings.Contains(d, tc.descHas) {
				t.Errorf("Description() = %q, want it to mention %q", d, tc.descHas)
			}
		})
	}
}

func TestResolveRedirectRefused(t *testing.T) {
	ts := newDocServer(t, func(w http.ResponseWriter, r *http.Request, base string) {
		switch r.URL.Path {
		case "/client.json":
			http.Redirect(w, r, "/real.json", http.StatusFound)
		case "/real.json":
			serveJSON(w, document(base+"/client.json", nil))
		}
	})
	r := newTestResolver(t, ts, nil)
	_, err := r.Resolve(context.Background(), ts.URL+"/client.json")
	if !errors.Is(err, ErrRedirectRefused) {
		t.Fatalf("err = %v, want ErrRedirectRefused", err)
	}
	if n := ts.count("/real.json"); n != 0 {
		t.Errorf("the redirect was followed (%d requests)", n)
	}
}

func TestResolveTimeout(t *testing.T) {
	release := make(chan struct{})
	ts := newDocServer(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		// Never answer: a returning handler would send an empty 200 that
		// a slow (loaded) client could still read before its deadline.
		panic(http.ErrAbortHandler)
	})
	t.Cleanup(func() { close(release) }) // runs before ts.Close
	r := newTestResolver(t, ts, func(_ *ResolverOptions, o *safefetch.Options) { o.Timeout = 100 * time.Millisecond })
	start := time.Now()
	_, err := r.Resolve(context.Background(), ts.URL+"/client.json")
	if !errors.Is(err, ErrFetch) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrFetch and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestResolveCallerCancel(t *testing.T) {
	release := make(chan struct{})
	ts := newDocServer(t, func(w http.ResponseWriter, r *http.Request, base string) {
		<-release
		w.Header().Set("Cache-Control", "max-age=600")
		serveJSON(w, document(base+r.URL.Path, nil))
	})
	r := newTestResolver(t, ts, nil)
	id := ts.URL + "/client.json"
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ts.count("/client.json") == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := r.Resolve(ctx, id); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// The shared fetch went on without the impatient caller and is
	// reused: the next caller gets its result from one request in total.
	close(release)
	if _, err := r.Resolve(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if n := ts.count("/client.json"); n != 1 {
		t.Errorf("server called %d times, want 1", n)
	}
}

func TestResolveCache(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		steps  []time.Duration // advance the clock before each Resolve after the first
		want   int             // server calls
	}{
		{name: "max-age hit", header: map[string]string{"Cache-Control": "public, max-age=300"}, steps: []time.Duration{0, 299 * time.Second}, want: 1},
		{name: "max-age expiry", header: map[string]string{"Cache-Control": "max-age=300"}, steps: []time.Duration{301 * time.Second}, want: 2},
		{name: "no-store", header: map[string]string{"Cache-Control": "no-store"}, steps: []time.Duration{0, 0}, want: 3},
		{name: "no-cache", header: map[string]string{"Cache-Control": "no-cache"}, steps: []time.Duration{0}, want: 2},
		{name: "max-age below MinTTL", header: map[string]string{"Cache-Control": "max-age=1"}, steps: []time.Duration{30 * time.Second}, want: 1},
		{name: "max-age=0 still MinTTL", header: map[string]string{"Cache-Control": "max-age=0"}, steps: []time.Duration{30 * time.Second, 31 * time.Second}, want: 2},
		{name: "max-age above MaxTTL", header: map[string]string{"Cache-Control": "max-age=999999"}, steps: []time.Duration{59 * time.Minute, 2 * time.Minute}, want: 2},
		{name: "no headers: MinTTL", steps: []time.Duration{59 * time.Second, 2 * time.Second}, want: 2},
		{name: "Age counts", header: map[string]string{"Cache-Control": "max-age=600", "Age": "500"}, steps: []time.Duration{101 * time.Second}, want: 2},
		{name: "Expires", header: map[string]string{
			"Date":    testNow.Format(http.TimeFormat),
			"Expires": testNow.Add(10 * time.Minute).Format(http.TimeFormat),
		}, steps: []time.Duration{9 * time.Minute, 2 * time.Minute}, want: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newDocServer(t, func(w http.ResponseWriter, r *http.Request, base string) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				serveJSON(w, document(base+r.URL.Path, nil))
			})
			clock := &fakeClock{t: testNow}
			r := newTestResolver(t, ts, func(_ *ResolverOptions, o *safefetch.Options) {
				o.Now = clock.Now
				o.MinTTL, o.MaxTTL = time.Minute, time.Hour
			})
			id := ts.URL + "/client.json"
			if _, err := r.Resolve(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			for _, d := range tc.steps {
				clock.Advance(d)
				if _, err := r.Resolve(context.Background(), id); err != nil {
					t.Fatal(err)
				}
			}
			if n := ts.count("/client.json"); n != tc.want {
				t.Errorf("server called %d times, want %d", n, tc.want)
			}
		})
	}
}

func TestResolveCacheLRU(t *testing.T) {
	ts := newDocServer(t, func(w http.ResponseWriter, r *http.Request, base string) {
		w.Header().Set("Cache-Control", "max-age=600")
		serveJSON(w, document(base+r.URL.Path, nil))
	})
	r := newTestResolver(t, ts, func(_ *ResolverOptions, o *safefetch.Options) { o.CacheEntries = 2 })
	for _, p := range []string{"/a.json", "/b.json", "/a.json", "/c.json", "/a.json", "/b.json"} {
		if _, err := r.Resolve(context.Background(), ts.URL+p); err != nil {
			t.Fatal(err)
		}
	}
	// a, b cached; a hit (a most recent); c evicts b; a hit; b refetched.
	got := []int{ts.count("/a.json"), ts.count("/b.json"), ts.count("/c.json")}
	if !slices.Equal(got, []int{1, 2, 1}) {
		t.Errorf("fetches per document = %v, want [1 2 1]", got)
	}
}

func TestResolveCacheReturnsCopies(t *testing.T) {
	ts := newDocServer(t, func(w http.ResponseWriter, r *http.Request, base string) {
		w.Header().Set("Cache-Control", "max-age=600")
		serveJSON(w, document(base+r.URL.Path, nil))
	})
	r := newTestResolver(t, ts, nil)
	id := ts.URL + "/client.json"
	c1, err := r.Resolve(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	c1.RedirectURIs[0] = "https://evil.example/cb"
	c2, err := r.Resolve(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c2.RedirectURIs[0] == "https://evil.example/cb" {
		t.Error("mutating a returned client changed the cache")
	}
}

func TestResolveConcurrentSharesOneFetch(t *testing.T) {
	release := make(chan struct{})
	ts := newDocServer(t, func(w http.ResponseWriter, r *http.Request, base string) {
		<-release
		w.Header().Set("Cache-Control", "max-age=600")
		serveJSON(w, document(base+r.URL.Path, nil))
	})
	r := newTestResolver(t, ts, nil)
	id := ts.URL + "/client.json"
	var wg sync.WaitGroup
	var failures atomic.Int32
	for range 16 {
		wg.Go(func() {
			if _, err := r.Resolve(context.Background(), id); err != nil {
				failures.Add(1)
			}
		})
	}
	for ts.count("/client.json") == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if failures.Load() != 0 {
		t.Errorf("%d Resolves failed", failures.Load())
	}
	if n := ts.count("/client.json"); n != 1 {
		t.Errorf("server called %d times, want 1", n)
	}
}

func TestResolveInvalidClientID(t *testing.T) {
	r, err := NewResolver(nil)
	if err != nil {
		t.Fatal(err)
	}
	// None of these may reach the network: they fail validation first.
	for _, id := range []string{
		"",
		"my-client",
		"http://app.example/client.json", // https only
		"HTTPS://app.example/client.json",
		"https://app.example",
		"https://app.example/",
		"https://app.example/client.json#frag",
		"https://app.example/client.json#",
		"https://user@app.example/client.json",
		"https://user:pw@app.example/client.json",
		"https://app.example/a/../client.json",
		"https://app.example/./client.json",
		"https://app.example/a/..",
		"https://app.example/%2e%2e/client.json",
		"https://app.example/%2E/client.json",
		"https:///client.json",
		"https://app.example:/client.json",
		"https://app%2eexample/client.json",
		"https://app.example/client json",
		"https://app.example/client.json\n",
		`https://app.example\client.json`,
		"ftp://app.example/client.json",
		"https://app.example/" + strings.Repeat("a", 3000),
	} {
		_, err := r.Resolve(context.Background(), id)
		if !errors.Is(err, ErrInvalidClientID) {
			t.Errorf("Resolve(%q) = %v, want ErrInvalidClientID", id, err)
		}
	}
	for _, id := range []string{
		"https://app.example/client.json",
		"https://app.example:8443/oauth/client.json",
		"https://app.example/client.json?v=2",
		"https://app.example/a..b/c.json",
	} {
		if err := r.checkClientID(id); err != nil {
			t.Errorf("checkClientID(%q) = %v, want nil", id, err)
		}
	}
}

// TestResolveSSRFGuard sends traffic only to loopback, and only through
// the guard, which must refuse it before connecting: by address, and by a
// public-looking name that resolves to loopback (DNS rebinding).
func TestResolveSSRFGuard(t *testing.T) {
	ts := newDocServer(t, func(w http.ResponseWriter, r *http.Request, base string) {
		serveJSON(w, document(base+r.URL.Path, nil))
	})
	u, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	port := u.Port()
	allow := mustAllowlist(t, "loopback")
	tlsConf := ts.Client().Transport.(*http.Transport).TLSClientConfig
	rebind := func(context.Context, string, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	fetchers := map[string]*safefetch.Options{
		"default":                 nil,
		"trusting the test CA":    {TLSConfig: tlsConf},
		"with a rebinding answer": {TLSConfig: tlsConf, LookupNetIP: rebind},
	}
	for name, fo := range fetchers {
		f, err := safefetch.New(fo)
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewResolver(&ResolverOptions{Fetcher: f, Allowlist: allow})
		if err != nil {
			t.Fatal(err)
		}
		ids := []string{
			ts.URL + "/client.json",
			"https://localhost:" + port + "/client.json",
			"https://[::1]:" + port + "/client.json",
			"https://[::ffff:127.0.0.1]:" + port + "/client.json",
			"https://0.0.0.0:" + port + "/client.json",
		}
		if fo != nil && fo.LookupNetIP != nil {
			// Only with the fake resolver: tests never ask real DNS.
			ids = append(ids, "https://example.com:"+port+"/client.json")
		}
		for _, id := range ids {
			_, err := r.Resolve(context.Background(), id)
			if !errors.Is(err, ErrForbiddenAddress) {
				t.Errorf("%s: Resolve(%s) = %v, want ErrForbiddenAddress", name, id, err)
				continue
			}
			var re *ResolveError
			if errors.As(err, &re) && strings.Contains(re.Description(), "127.0.0.1") {
				t.Errorf("Description leaks the address: %q", re.Description())
			}
		}
	}
	if n := ts.total(); n != 0 {
		t.Errorf("the guarded resolver reached the server %d times", n)
	}
	// The same server is reachable with the test's loopback allowance:
	// the guard, not something else, refused it above.
	r := newTestResolver(t, ts, nil)
	if _, err := r.Resolve(context.Background(), ts.URL+"/client.json"); err != nil {
		t.Fatalf("with the allowance: %v", err)
	}
}

func TestNewResolverOptions(t *testing.T) {
	f, err := safefetch.New(&safefetch.Options{AllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewResolver(&ResolverOptions{Fetcher: f})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.checkClientID("http://127.0.0.1:8080/client.json"); err != nil {
		t.Errorf("a fetcher allowing http admits http client IDs: %v", err)
	}
	r, err = NewResolver(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.checkClientID("http://127.0.0.1:8080/client.json"); err == nil {
		t.Error("the default resolver admits http client IDs")
	}
}

// TestResolveDocumentSizeLimit: the default limit is 16 KiB (issue 8,
// finding 9); a larger document is refused before it is parsed.
func TestResolveDocumentSizeLimit(t *testing.T) {
	ts := newDocServer(t, func(w http.ResponseWriter, r *http.Request, base string) {
		serveJSON(w, document(base+r.URL.Path, map[string]any{"pad": strings.Repeat("x", 20<<10)}))
	})
	r := newTestResolver(t, ts, nil)
	if _, err := r.Resolve(context.Background(), ts.URL+"/client.json"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestIsMetadataClientID(t *testing.T) {
	for id, want := range map[string]bool{
		"https://app.example/client.json": true,
		"abc123":                          false,
		"http://app.example/client.json":  false,
		"":                                false,
	} {
		if got := IsMetadataClientID(id); got != want {
			t.Errorf("IsMetadataClientID(%q) = %v", id, got)
		}
	}
}
