package registration

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// Reasons a client ID metadata document is refused; a *ResolveError wraps
// exactly one of them (test with errors.Is).
var (
	// ErrInvalidClientID: the client_id is not a valid metadata URL.
	ErrInvalidClientID = errors.New("invalid client metadata URL")
	// ErrFetch: the document could not be retrieved (network error,
	// timeout, or a status other than 200).
	ErrFetch = errors.New("client metadata document could not be fetched")
	// ErrRedirectRefused: the URL answered with a redirect, which the
	// resolver never follows.
	ErrRedirectRefused = errors.New("client metadata URL redirected")
	// ErrTooLarge: the document exceeds ResolverOptions.MaxBytes.
	ErrTooLarge = errors.New("client metadata document too large")
	// ErrInvalidDocument: the document is not acceptable client metadata.
	ErrInvalidDocument = errors.New("invalid client metadata document")
	// ErrRedirectURINotAllowed: a redirect_uri fails the allowlist.
	ErrRedirectURINotAllowed = errors.New("client metadata redirect URI not allowed")
	// ErrForbiddenAddress (in ssrf.go) is the sixth reason.
)

// ResolveError is why Resolve refused a client_id. Render it as the OAuth
// error invalid_client with Description() as error_description.
type ResolveError struct {
	ClientID string
	// Reason is one of ErrInvalidClientID, ErrForbiddenAddress, ErrFetch,
	// ErrRedirectRefused, ErrTooLarge, ErrInvalidDocument,
	// ErrRedirectURINotAllowed.
	Reason error
	// Detail says what exactly, in words fit for the client.
	Detail string
	// Err is the underlying cause, if any (not for the client's eyes).
	Err error
}

func (e *ResolveError) Error() string {
	s := fmt.Sprintf("client %q: %v: %s", e.ClientID, e.Reason, e.Detail)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap exposes both the reason and the cause to errors.Is / errors.As.
func (e *ResolveError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Reason}
	}
	return []error{e.Reason, e.Err}
}

// Description is the client-facing text: the reason and detail, without
// internals such as resolved addresses.
func (e *ResolveError) Description() string {
	return e.Reason.Error() + ": " + e.Detail
}

// ResolverOptions configures a Resolver; every field is optional.
type ResolverOptions struct {
	// Client fetches documents. nil: the resolver builds one whose dialer
	// enforces the SSRF guard. A given client with an *http.Transport (or
	// nil Transport) gets a guarded copy of it unless AllowPrivate; any
	// other RoundTripper is refused unless AllowPrivate. Redirects are
	// never followed whatever the client says.
	Client *http.Client
	// Timeout bounds one fetch, connect to last byte; default 5s.
	Timeout time.Duration
	// MaxBytes bounds a document; default 64 KiB.
	MaxBytes int64
	// AllowPrivate turns the SSRF guard off and admits http:// client
	// IDs. For tests and loopback development only.
	AllowPrivate bool
	// Allowlist must admit every redirect URI of a document; the zero
	// Allowlist admits none.
	Allowlist Allowlist
	// Now is the clock for the cache; default time.Now.
	Now func() time.Time
	// CacheMax bounds the cache (least recently used entries go first);
	// default 1000.
	CacheMax int
	// MinTTL and MaxTTL bound how long a document is cached, whatever its
	// response headers say; defaults 1m and 24h. A response marked
	// no-store or no-cache is not cached at all.
	MinTTL, MaxTTL time.Duration
	Logger         *slog.Logger
}

// Resolver fetches, validates and caches client ID metadata documents
// (draft-ietf-oauth-client-id-metadata-document; MCP 2025-11-25
// authorization, "Client ID Metadata Documents"). It is safe for
// concurrent use.
type Resolver struct {
	client       *http.Client
	timeout      time.Duration
	maxBytes     int64
	allowPrivate bool
	allowlist    Allowlist
	now          func() time.Time
	minTTL       time.Duration
	maxTTL       time.Duration
	log          *slog.Logger

	mu       sync.Mutex
	cache    *lru
	inflight map[string]*fetchCall
}

// fetchCall is one fetch in progress; concurrent Resolves of the same
// client_id share it rather than multiplying requests to the client's host.
type fetchCall struct {
	done   chan struct{}
	client store.Client
	err    error
}

// NewResolver returns a Resolver; opts may be nil.
func NewResolver(opts *ResolverOptions) (*Resolver, error) {
	var o ResolverOptions
	if opts != nil {
		o = *opts
	}
	r := &Resolver{
		timeout: o.Timeout, maxBytes: o.MaxBytes, allowPrivate: o.AllowPrivate,
		allowlist: o.Allowlist, now: o.Now, minTTL: o.MinTTL, maxTTL: o.MaxTTL, log: o.Logger,
		inflight: map[string]*fetchCall{},
	}
	if r.timeout <= 0 {
		r.timeout = 5 * time.Second
	}
	if r.maxBytes <= 0 {
		r.maxBytes = 64 << 10
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.minTTL <= 0 {
		r.minTTL = time.Minute
	}
	if r.maxTTL <= 0 {
		r.maxTTL = 24 * time.Hour
	}
	if r.maxTTL < r.minTTL {
		return nil, errors.New("registration: MaxTTL is below MinTTL")
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	cacheMax := o.CacheMax
	if cacheMax <= 0 {
		cacheMax = 1000
	}
	r.cache = newLRU(cacheMax)

	var c http.Client
	switch {
	case o.Client == nil:
		c.Transport = newGuardedTransport(o.AllowPrivate, r.timeout)
	case o.AllowPrivate:
		c = *o.Client
	default:
		c = *o.Client
		var t *http.Transport
		switch rt := c.Transport.(type) {
		case nil:
			t = newGuardedTransport(false, r.timeout)
		case *http.Transport:
			t = rt.Clone()
			guardTransport(t, r.timeout)
		default:
			return nil, fmt.Errorf("registration: cannot install the SSRF guard in a %T; use an *http.Transport or set AllowPrivate", rt)
		}
		c.Transport = t
	}
	// draft §4 (-00/-01): the authorization server MUST NOT automatically
	// follow redirects; a 3xx comes back to us and is refused.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.Jar = nil
	r.client = &c
	return r, nil
}

// IsMetadataClientID reports whether clientID has the shape of a client
// ID metadata document URL (an https URL), i.e. whether an authorization
// server should Resolve it rather than look it up in its store (MCP
// 2025-11-25 authorization, "Client ID Metadata Documents"). It does not
// validate it; Resolve does.
func IsMetadataClientID(clientID string) bool {
	return strings.HasPrefix(clientID, "https://")
}

// Resolve returns the client a client ID metadata document describes,
// from the cache or fetched now. Errors are *ResolveError.
func (r *Resolver) Resolve(ctx context.Context, clientID string) (store.Client, error) {
	if err := r.checkClientID(clientID); err != nil {
		return store.Client{}, &ResolveError{ClientID: clientID, Reason: ErrInvalidClientID, Detail: err.Error()}
	}
	r.mu.Lock()
	if c, ok := r.cache.get(clientID, r.now()); ok {
		r.mu.Unlock()
		return cloneClient(c), nil
	}
	call := r.inflight[clientID]
	if call == nil {
		call = &fetchCall{done: make(chan struct{})}
		r.inflight[clientID] = call
		// The fetch runs detached from this caller's context, bounded by
		// the timeout, so one impatient caller cannot fail the others
		// waiting on it.
		go r.run(context.WithoutCancel(ctx), clientID, call)
	}
	r.mu.Unlock()
	select {
	case <-call.done:
		if call.err != nil {
			return store.Client{}, call.err
		}
		return cloneClient(call.client), nil
	case <-ctx.Done():
		return store.Client{}, &ResolveError{ClientID: clientID, Reason: ErrFetch, Detail: "the request was cancelled", Err: ctx.Err()}
	}
}

func (r *Resolver) run(ctx context.Context, clientID string, call *fetchCall) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	c, ttl, err := r.fetch(ctx, clientID)
	r.mu.Lock()
	call.client, call.err = c, err
	if err == nil && ttl > 0 {
		r.cache.put(clientID, c, r.now().Add(ttl))
	}
	delete(r.inflight, clientID)
	r.mu.Unlock()
	close(call.done)
	if err != nil {
		r.log.Info("client metadata document refused", "client_id", clientID, "error", err)
	} else {
		r.log.Debug("client metadata document fetched", "client_id", clientID, "ttl", ttl)
	}
}

// checkClientID applies the client identifier rules of draft §3: an
// https URL with a path, no fragment, no userinfo, no "." or ".."
// segments. A query is allowed (the draft discourages but permits it).
// The draft's rules are stricter than URL parsing needs so that a URL has
// one spelling: the client_id must equal the document's client_id
// byte for byte.
func (r *Resolver) checkClientID(id string) error {
	if len(id) > maxURILen {
		return fmt.Errorf("longer than %d bytes", maxURILen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= 0x20 || c >= 0x7f || c == '\\' {
			return errors.New("contains whitespace, control, non-ASCII or \"\\\" characters")
		}
	}
	if strings.Contains(id, "#") {
		return errFragment
	}
	u, err := url.Parse(id)
	if err != nil {
		return errors.New("not a valid URL")
	}
	switch {
	case strings.HasPrefix(id, "https://"):
	case r.allowPrivate && strings.HasPrefix(id, "http://"):
	default:
		return errors.New("must be an https URL")
	}
	if u.User != nil {
		return errUserinfo
	}
	if u.Hostname() == "" || strings.HasSuffix(u.Host, ":") {
		return errors.New("must name a host")
	}
	if auth, _, _ := strings.Cut(id[strings.Index(id, "//")+2:], "/"); strings.Contains(auth, "%") {
		// net/url would fetch from the decoded host while the client_id
		// shows the encoded one.
		return errors.New("must not percent-encode the host")
	}
	path := u.EscapedPath()
	if path == "" || path == "/" {
		return errors.New("must contain a path")
	}
	for seg := range strings.SplitSeq(path, "/") {
		if s, err := url.PathUnescape(seg); err != nil || s == "." || s == ".." {
			return errors.New(`must not contain "." or ".." path segments`)
		}
	}
	return nil
}

// fetch retrieves and validates the document; ttl 0 = do not cache.
func (r *Resolver) fetch(ctx context.Context, clientID string) (store.Client, time.Duration, error) {
	fail := func(reason error, detail string, cause error) (store.Client, time.Duration, error) {
		return store.Client{}, 0, &ResolveError{ClientID: clientID, Reason: reason, Detail: detail, Err: cause}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientID, nil)
	if err != nil {
		return fail(ErrInvalidClientID, "not a valid URL", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, ErrForbiddenAddress):
			return fail(ErrForbiddenAddress, "the host does not resolve to a public address", err)
		case errors.Is(err, context.DeadlineExceeded):
			return fail(ErrFetch, fmt.Sprintf("no response within %s", r.timeout), err)
		}
		return fail(ErrFetch, "the request failed", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return fail(ErrRedirectRefused, fmt.Sprintf("status %d; redirects are not followed, serve the document at the client_id URL itself", resp.StatusCode), nil)
	case resp.StatusCode != http.StatusOK:
		// draft §4: anything but 200 is an error.
		return fail(ErrFetch, fmt.Sprintf("status %d (want 200)", resp.StatusCode), nil)
	}
	// draft §4: application/json or a more specific application/…+json.
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || !(mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return fail(ErrInvalidDocument, "the response is not application/json", nil)
	}
	tooBig := fmt.Sprintf("larger than %d bytes", r.maxBytes)
	if resp.ContentLength > r.maxBytes {
		return fail(ErrTooLarge, tooBig, nil)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.maxBytes+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fail(ErrFetch, fmt.Sprintf("no complete response within %s", r.timeout), err)
		}
		return fail(ErrFetch, "reading the response failed", err)
	}
	if int64(len(body)) > r.maxBytes {
		return fail(ErrTooLarge, tooBig, nil)
	}

	fields, err := decodeObject(body)
	if err != nil {
		return fail(ErrInvalidDocument, "the document is not a JSON object", nil)
	}
	// draft §4.1: client_id MUST equal the document's URL by simple string
	// comparison (RFC 3986 §6.2.1), so a document cannot speak for
	// another URL.
	id, merr := stringField(fields, "client_id")
	if merr != nil || id == "" {
		return fail(ErrInvalidDocument, "client_id is missing or not a string", nil)
	}
	if id != clientID {
		return fail(ErrInvalidDocument, fmt.Sprintf("client_id %q does not match the document URL", id), nil)
	}
	// draft §4.1: there is no way to share a secret with a metadata
	// document client, so symmetric-secret metadata is forbidden.
	for _, k := range []string{"client_secret", "client_secret_expires_at"} {
		if _, ok := fields[k]; ok {
			return fail(ErrInvalidDocument, k+" must not appear in a client metadata document", nil)
		}
	}
	var notAllowed error
	md, merr := parseMetadata(fields, metadataRules{
		// No secret is possible, so an absent method means a public client
		// rather than RFC 7591's client_secret_basic default.
		defaultAuthMethod: authNone,
		authMethods:       []string{authNone, authPrivateKeyJWT},
		clientCredentials: true, // only with private_key_jwt: none is refused
		redirectURI: func(u string) error {
			notAllowed = ErrRedirectURINotAllowed
			if err := checkRedirectURI(u); err != nil {
				return err
			}
			if !r.allowlist.Allows(u) {
				return errors.New("not allowed by this server's redirect URI policy")
			}
			notAllowed = nil
			return nil
		},
	})
	if merr != nil {
		reason := ErrInvalidDocument
		if notAllowed != nil {
			reason = notAllowed
		}
		return fail(reason, merr.desc, nil)
	}
	if len(md.redirectURIs) == 0 {
		// MCP 2025-11-25: a metadata document must list redirect_uris.
		return fail(ErrInvalidDocument, "redirect_uris is required", nil)
	}

	now := r.now().UTC()
	c := store.Client{
		ID:                      clientID,
		Name:                    md.name,
		Kind:                    store.ClientMetadata,
		RedirectURIs:            md.redirectURIs,
		GrantTypes:              md.grantTypes,
		ResponseTypes:           md.responseTypes,
		TokenEndpointAuthMethod: md.authMethod,
		Scope:                   md.scope,
		JWKS:                    md.jwks,
		JWKSURI:                 md.jwksURI,
		Metadata:                compact(body),
		CreatedAt:               now,
		UpdatedAt:               now,
	}
	return c, r.cacheTTL(resp.Header, now), nil
}

// cacheTTL reads the HTTP caching headers (draft §4.4 asks the server to
// respect them): no-store or no-cache → 0 (not cached); else max-age
// (RFC 9111 §5.2.2.1) less Age (§5.1), or Expires less Date (§5.3, an
// invalid Expires meaning already expired); else MinTTL. The result is
// bounded by MinTTL and MaxTTL, so a hostile document can neither force a
// fetch per request nor pin itself for long.
func (r *Resolver) cacheTTL(h http.Header, now time.Time) time.Duration {
	ttl, found := time.Duration(0), false
	for _, line := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
				if err == nil && !found {
					ttl, found = time.Duration(min(max(n, 0), 1<<31))*time.Second, true
				}
			}
		}
	}
	if found {
		if age, err := strconv.ParseInt(h.Get("Age"), 10, 64); err == nil && age > 0 {
			ttl -= time.Duration(min(age, 1<<31)) * time.Second
		}
	} else if exp := h.Get("Expires"); exp != "" {
		base := now
		if d, err := http.ParseTime(h.Get("Date")); err == nil {
			base = d
		}
		if t, err := http.ParseTime(exp); err == nil {
			ttl = t.Sub(base)
		}
	} else {
		ttl = r.minTTL
	}
	return min(max(ttl, r.minTTL), r.maxTTL)
}

func cloneClient(c store.Client) store.Client {
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.ResponseTypes = slices.Clone(c.ResponseTypes)
	c.JWKS = slices.Clone(c.JWKS)
	c.Metadata = slices.Clone(c.Metadata)
	return c
}

// lru is a size-bounded cache with expiry; the caller holds the lock.
type lru struct {
	max   int
	order *list.List // front = most recently used; values are *lruEntry
	items map[string]*list.Element
}

type lruEntry struct {
	key     string
	client  store.Client
	expires time.Time
}

func newLRU(n int) *lru {
	return &lru{max: n, order: list.New(), items: map[string]*list.Element{}}
}

func (l *lru) get(key string, now time.Time) (store.Client, bool) {
	el, ok := l.items[key]
	if !ok {
		return store.Client{}, false
	}
	e := el.Value.(*lruEntry)
	if !now.Before(e.expires) {
		l.order.Remove(el)
		delete(l.items, key)
		return store.Client{}, false
	}
	l.order.MoveToFront(el)
	return e.client, true
}

func (l *lru) put(key string, c store.Client, expires time.Time) {
	if el, ok := l.items[key]; ok {
		el.Value = &lruEntry{key: key, client: c, expires: expires}
		l.order.MoveToFront(el)
		return
	}
	l.items[key] = l.order.PushFront(&lruEntry{key: key, client: c, expires: expires})
	for l.order.Len() > l.max {
		last := l.order.Back()
		l.order.Remove(last)
		delete(l.items, last.Value.(*lruEntry).key)
	}
}
