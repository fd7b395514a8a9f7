package registration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/url"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/safefetch"
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
	// ErrForbiddenAddress: the metadata URL's host is (or resolved to) an
	// address the resolver must not contact (the guard of package
	// safefetch).
	ErrForbiddenAddress = safefetch.ErrForbiddenAddress
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

// DefaultMaxDocumentBytes bounds a client ID metadata document unless
// ResolverOptions.MaxBytes says otherwise. Real documents are a few hundred
// bytes; the bound keeps a stranger's document from costing us much.
const DefaultMaxDocumentBytes = 16 << 10

// ResolverOptions configures a Resolver; every field is optional.
type ResolverOptions struct {
	// Fetcher fetches documents: it holds the SSRF guard, the size and
	// time limits and the cache (see package safefetch). nil: a fetcher
	// with safefetch's defaults (public https addresses only).
	Fetcher *safefetch.Fetcher
	// MaxBytes bounds a document; default DefaultMaxDocumentBytes.
	MaxBytes int64
	// Allowlist must admit every redirect URI of a document; the zero
	// Allowlist admits none.
	Allowlist Allowlist
	// Now stamps the clients' CreatedAt; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Resolver fetches and validates client ID metadata documents
// (draft-ietf-oauth-client-id-metadata-document; MCP 2025-11-25
// authorization, "Client ID Metadata Documents"). Fetching, caching and
// sharing concurrent fetches are the Fetcher's; a cached document is
// validated again at each Resolve, which costs microseconds. It is safe
// for concurrent use.
type Resolver struct {
	fetcher   *safefetch.Fetcher
	maxBytes  int64
	allowlist Allowlist
	now       func() time.Time
	log       *slog.Logger
}

// NewResolver returns a Resolver; opts may be nil.
func NewResolver(opts *ResolverOptions) (*Resolver, error) {
	var o ResolverOptions
	if opts != nil {
		o = *opts
	}
	r := &Resolver{fetcher: o.Fetcher, maxBytes: o.MaxBytes, allowlist: o.Allowlist, now: o.Now, log: o.Logger}
	if r.fetcher == nil {
		f, err := safefetch.New(nil)
		if err != nil {
			return nil, err
		}
		r.fetcher = f
	}
	if r.maxBytes <= 0 {
		r.maxBytes = DefaultMaxDocumentBytes
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
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
// fetched now or from the fetcher's cache. Errors are *ResolveError.
func (r *Resolver) Resolve(ctx context.Context, clientID string) (store.Client, error) {
	if err := r.checkClientID(clientID); err != nil {
		return store.Client{}, &ResolveError{ClientID: clientID, Reason: ErrInvalidClientID, Detail: err.Error()}
	}
	c, err := r.resolve(ctx, clientID)
	if err != nil {
		r.log.Info("client metadata document refused", "client_id", clientID, "error", err)
	}
	return c, err
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
	case r.fetcher.AllowsHTTP() && strings.HasPrefix(id, "http://"):
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

// resolve fetches and validates the document.
func (r *Resolver) resolve(ctx context.Context, clientID string) (store.Client, error) {
	fail := func(reason error, detail string, cause error) (store.Client, error) {
		return store.Client{}, &ResolveError{ClientID: clientID, Reason: reason, Detail: detail, Err: cause}
	}
	// draft §4 (-00/-01): the authorization server MUST NOT automatically
	// follow redirects: MaxRedirects 0 turns a 3xx into an error.
	resp, err := r.fetcher.Get(ctx, safefetch.Request{URL: clientID, Accept: "application/json", MaxBytes: r.maxBytes})
	var status *safefetch.StatusError
	switch {
	case err == nil:
	case errors.Is(err, safefetch.ErrForbiddenAddress):
		return fail(ErrForbiddenAddress, "the host does not resolve to a public address", err)
	case errors.Is(err, safefetch.ErrRedirect) && errors.As(err, &status):
		return fail(ErrRedirectRefused, fmt.Sprintf("status %d; redirects are not followed, serve the document at the client_id URL itself", status.Code), err)
	case errors.As(err, &status):
		// draft §4: anything but 200 is an error.
		return fail(ErrFetch, fmt.Sprintf("status %d (want 200)", status.Code), err)
	case errors.Is(err, safefetch.ErrTooLarge):
		return fail(ErrTooLarge, fmt.Sprintf("larger than %d bytes", r.maxBytes), err)
	case errors.Is(err, safefetch.ErrBusy):
		return fail(ErrFetch, "too many documents are being fetched; try again shortly", err)
	case errors.Is(err, context.DeadlineExceeded):
		return fail(ErrFetch, "no complete response in time", err)
	case errors.Is(err, context.Canceled):
		return fail(ErrFetch, "the request was cancelled", err)
	default:
		return fail(ErrFetch, "the request failed", err)
	}
	// draft §4: application/json or a more specific application/…+json.
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || !(mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return fail(ErrInvalidDocument, "the response is not application/json", nil)
	}
	return r.parseDocument(clientID, resp.Body)
}

// parseDocument validates a fetched document for clientID (draft §4.1)
// and returns its client. Errors are *ResolveError.
func (r *Resolver) parseDocument(clientID string, body []byte) (store.Client, error) {
	fail := func(reason error, detail string, cause error) (store.Client, error) {
		return store.Client{}, &ResolveError{ClientID: clientID, Reason: reason, Detail: detail, Err: cause}
	}
	fields, err := decodeObject(body)
	if errors.Is(err, errRepeatedMember) {
		return fail(ErrInvalidDocument, err.Error(), nil)
	}
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
		return fail(reason, merr.Description, nil)
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
	return c, nil
}
