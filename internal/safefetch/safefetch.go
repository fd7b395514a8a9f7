// Package safefetch is the one way mcpgate fetches a URL that someone
// outside chose: a client ID metadata document, a client's jwks_uri, and
// anything else fetched on a client's say-so. Such a fetch is a request
// forgery waiting to happen (draft-ietf-oauth-client-id-metadata-document,
// Security Considerations, "Server Side Request Forgery"; RFC 7591 §5), so
// every fetch here is:
//
//   - https only (plain http only with an explicit allowance);
//   - connected only to public addresses: the check runs in the dialer's
//     Control hook on the address actually connected to, after name
//     resolution, so DNS rebinding and redirects to private addresses are
//     refused the same way (loopback, private, link-local, CGNAT,
//     IPv4-mapped and NAT64 forms... see CheckAddr), unless the address is
//     in an explicit allowance (tests, development, an operator's choice);
//   - followed through redirects only when the caller asks, each hop
//     https and re-checked, at most Request.MaxRedirects hops;
//   - bounded in size (Request.MaxBytes) and in total time (Options.Timeout);
//   - cached, honouring Cache-Control max-age (and Expires) bounded by a
//     floor and a ceiling, in a size-bounded cache; concurrent fetches of
//     one URL share one request.
//
// Validating what was fetched is the caller's job (registration for
// metadata documents, grants for keys).
package safefetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Reasons a fetch fails; errors wrap one of them (test with errors.Is).
var (
	// ErrForbiddenAddress: the host is (or resolved to, or redirected to)
	// an address that must not be contacted.
	ErrForbiddenAddress = errors.New("address is not publicly routable")
	// ErrScheme: the URL (or a redirect) is not https.
	ErrScheme = errors.New("URL must be https")
	// ErrRedirect: the server redirected, and the request allows no (more)
	// redirects.
	ErrRedirect = errors.New("redirect not followed")
	// ErrStatus: the final status was not 200.
	ErrStatus = errors.New("unexpected HTTP status")
	// ErrTooLarge: the body exceeds Request.MaxBytes.
	ErrTooLarge = errors.New("response too large")
	// ErrBusy: Options.MaxInFlight fetches are already running.
	ErrBusy = errors.New("too many fetches in progress")
)

// StatusError is a non-200 final status. It matches ErrStatus, and
// ErrRedirect for a 3xx.
type StatusError struct{ Code int }

func (e *StatusError) Error() string { return "HTTP status " + strconv.Itoa(e.Code) }

// Is makes errors.Is(err, ErrStatus) and, for 3xx, errors.Is(err,
// ErrRedirect) hold.
func (e *StatusError) Is(target error) bool {
	return target == ErrStatus || target == ErrRedirect && e.Code >= 300 && e.Code < 400
}

// Defaults of Options and Request.
const (
	DefaultTimeout      = 5 * time.Second
	DefaultMaxBytes     = 64 << 10
	DefaultCacheEntries = 1000
	DefaultMinTTL       = time.Minute
	DefaultMaxTTL       = 24 * time.Hour
	DefaultMaxInFlight  = 32
	maxHeaderBytes      = 16 << 10
)

// Options configures a Fetcher; every field is optional and the zero
// value is the safe default.
type Options struct {
	// Timeout bounds one fetch, from connect to the last body byte,
	// redirects included. Default 5s.
	Timeout time.Duration
	// Allow lists address ranges that may be contacted although they are
	// not public (e.g. 127.0.0.0/8 in a test). Default: none.
	Allow []netip.Prefix
	// AllowHTTP admits plain http URLs (tests, development). Default: https
	// only.
	AllowHTTP bool
	// TLSConfig is the TLS client configuration (tests: trust a test CA).
	TLSConfig *tls.Config
	// LookupNetIP resolves host names; default net.DefaultResolver. Tests
	// inject a resolver to play DNS rebinding.
	LookupNetIP func(ctx context.Context, network, host string) ([]netip.Addr, error)
	// CacheEntries bounds the cache (least recently used entries go
	// first); default 1000.
	CacheEntries int
	// MinTTL and MaxTTL bound how long a response is cached, whatever its
	// headers say; defaults 1m and 24h. A response marked no-store or
	// no-cache is not cached.
	MinTTL, MaxTTL time.Duration
	// Now is the cache's clock; default time.Now.
	Now func() time.Time
	// MaxInFlight bounds the fetches running at once (concurrent Gets of
	// one URL share one); beyond it Get fails with ErrBusy rather than
	// queue, so strangers cannot make the server a fetching amplifier or
	// pile up goroutines. Default 32.
	MaxInFlight int
}

// Request is one fetch.
type Request struct {
	URL string
	// Accept is sent as the Accept header; default application/json.
	Accept string
	// MaxBytes bounds the body; default 64 KiB.
	MaxBytes int64
	// MaxRedirects is how many redirects may be followed (each hop https
	// and address-checked); 0: a redirect fails with ErrRedirect.
	MaxRedirects int
}

// Response is a fetched 200 response. Callers must not modify it: it may
// be shared with other callers through the cache.
type Response struct {
	Header http.Header
	Body   []byte
	// Cached reports whether it came from the cache.
	Cached bool
}

// Fetcher fetches URLs under the guard. Safe for concurrent use.
type Fetcher struct {
	transport *http.Transport
	guard     addrGuard
	lookup    func(ctx context.Context, network, host string) ([]netip.Addr, error)
	allowHTTP bool
	timeout   time.Duration
	minTTL    time.Duration
	maxTTL    time.Duration
	now       func() time.Time

	slots chan struct{} // one per fetch running

	mu       sync.Mutex
	cache    *lru
	inflight map[string]*call
}

// call is one fetch in progress, shared by concurrent Gets of one key.
type call struct {
	done chan struct{}
	resp *Response
	err  error
}

// New returns a Fetcher; opts may be nil.
func New(opts *Options) (*Fetcher, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	f := &Fetcher{guard: addrGuard{allow: o.Allow}, lookup: o.LookupNetIP, allowHTTP: o.AllowHTTP,
		timeout: o.Timeout, minTTL: o.MinTTL, maxTTL: o.MaxTTL, now: o.Now, inflight: map[string]*call{}}
	if f.timeout <= 0 {
		f.timeout = DefaultTimeout
	}
	if f.minTTL <= 0 {
		f.minTTL = DefaultMinTTL
	}
	if f.maxTTL <= 0 {
		f.maxTTL = DefaultMaxTTL
	}
	if f.maxTTL < f.minTTL {
		return nil, errors.New("safefetch: MaxTTL is below MinTTL")
	}
	if f.now == nil {
		f.now = time.Now
	}
	if f.lookup == nil {
		f.lookup = net.DefaultResolver.LookupNetIP
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	f.slots = make(chan struct{}, o.MaxInFlight)
	n := o.CacheEntries
	if n <= 0 {
		n = DefaultCacheEntries
	}
	f.cache = newLRU(n)
	dialer := &net.Dialer{Timeout: f.timeout, Control: f.guard.control}
	f.transport = &http.Transport{
		// No proxy: the dialer would vet the proxy, not the target.
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return f.dial(ctx, dialer, network, addr)
		},
		TLSClientConfig:        o.TLSConfig.Clone(),
		TLSHandshakeTimeout:    f.timeout,
		ResponseHeaderTimeout:  f.timeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
		MaxIdleConns:           16,
		IdleConnTimeout:        30 * time.Second,
		ForceAttemptHTTP2:      true,
	}
	return f, nil
}

// AllowsHTTP reports whether plain http URLs are admitted.
func (f *Fetcher) AllowsHTTP() bool { return f.allowHTTP }

// dial resolves addr's host with the (injectable) resolver and connects to
// each address in turn through dialer, whose Control hook vets the address
// actually connected to.
func (f *Fetcher) dial(ctx context.Context, dialer *net.Dialer, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else if ips, err = f.lookup(ctx, "ip", host); err != nil {
		return nil, err
	}
	var first error
	for _, ip := range ips {
		conn, err := dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		if first == nil || errors.Is(err, ErrForbiddenAddress) && !errors.Is(first, ErrForbiddenAddress) {
			first = err
		}
	}
	if first == nil {
		first = fmt.Errorf("%s: no addresses", host)
	}
	return nil, first
}

// CloseIdleConnections closes idle connections (for tests and shutdown).
func (f *Fetcher) CloseIdleConnections() { f.transport.CloseIdleConnections() }

// Get fetches req.URL, from the cache when a fresh copy is there. Errors
// wrap one of the Err* sentinels, a *StatusError, or the context's error.
func (f *Fetcher) Get(ctx context.Context, req Request) (*Response, error) {
	if req.Accept == "" {
		req.Accept = "application/json"
	}
	if req.MaxBytes <= 0 {
		req.MaxBytes = DefaultMaxBytes
	}
	if err := f.checkURL(req.URL); err != nil {
		return nil, err
	}
	key := req.URL + "\n" + req.Accept + "\n" + strconv.FormatInt(req.MaxBytes, 10) + "\n" + strconv.Itoa(req.MaxRedirects)
	f.mu.Lock()
	if r, ok := f.cache.get(key, f.now()); ok {
		f.mu.Unlock()
		return &Response{Header: r.Header, Body: r.Body, Cached: true}, nil
	}
	c := f.inflight[key]
	if c == nil {
		select {
		case f.slots <- struct{}{}: // released by run
		default:
			f.mu.Unlock()
			return nil, ErrBusy
		}
		c = &call{done: make(chan struct{})}
		f.inflight[key] = c
		// The fetch runs detached from this caller's context, bounded by
		// the timeout, so one impatient caller cannot fail the others
		// waiting on it.
		go f.run(context.WithoutCancel(ctx), key, req, c)
	}
	f.mu.Unlock()
	select {
	case <-c.done:
		return c.resp, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *Fetcher) run(ctx context.Context, key string, req Request, c *call) {
	defer func() { <-f.slots }()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	resp, err := f.fetch(ctx, req)
	now := f.now()
	f.mu.Lock()
	c.resp, c.err = resp, err
	if err == nil {
		if ttl := CacheTTL(resp.Header, now, f.minTTL, f.maxTTL); ttl > 0 {
			f.cache.put(key, resp, now.Add(ttl))
		}
	}
	delete(f.inflight, key)
	f.mu.Unlock()
	close(c.done)
}

// checkURL: an absolute http(s) URL with a host, https unless allowed.
func (f *Fetcher) checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: not an absolute URL", ErrScheme)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && f.allowHTTP:
	default:
		return fmt.Errorf("%w: %q", ErrScheme, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: userinfo in URL", ErrScheme)
	}
	return nil
}

func (f *Fetcher) fetch(ctx context.Context, req Request) (*Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, req.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrScheme, err)
	}
	hreq.Header.Set("Accept", req.Accept)
	client := &http.Client{Transport: f.transport, CheckRedirect: func(next *http.Request, via []*http.Request) error {
		if len(via) > req.MaxRedirects {
			return http.ErrUseLastResponse // the 3xx comes back as a StatusError
		}
		// Each hop is vetted like the first; its address is checked by
		// the dialer when it connects.
		return f.checkURL(next.URL.String())
	}}
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{Code: resp.StatusCode}
	}
	if resp.ContentLength > req.MaxBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrTooLarge, req.MaxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, req.MaxBytes+1))
	if err == nil {
		// A body cut off by the deadline can look like a clean end (the
		// connection closed under it); never take it for a whole one.
		err = ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > req.MaxBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrTooLarge, req.MaxBytes)
	}
	return &Response{Header: resp.Header, Body: body}, nil
}
