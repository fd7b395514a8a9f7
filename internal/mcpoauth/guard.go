// Package mcpoauth is mcpgate acting as an MCP OAuth client towards a
// third-party MCP server that runs its own authorization (a Notion-,
// Linear- or GitHub-style remote server): it discovers the server's
// authorization server from its 401 (RFC 9728, then RFC 8414 / OpenID
// Connect discovery), chooses how to be a client there (its own client ID
// metadata document, pre-registered credentials, or RFC 7591 dynamic
// registration, kept once per authorization server), builds the
// authorization request (PKCE S256, RFC 8707 resource, scopes from the
// challenge), checks the response's iss (RFC 9207), redeems and refreshes
// tokens, and decides when step-up authorization can help.
//
// The upstream URL is the operator's; the authorization server it names
// is not. Everything fetched from or sent to an authorization server goes
// through a client whose dialer refuses non-public addresses (the same
// predicate as internal/safefetch), unless the operator allowed them.
//
// Protocol work that a well-kept library already does is delegated: the
// MCP Go SDK's oauthex (metadata documents, WWW-Authenticate parsing,
// registration) and golang.org/x/oauth2 (PKCE, the code exchange).
package mcpoauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/internal/safefetch"
	"golang.org/x/oauth2"
)

// GuardOptions configures the guarded HTTP client.
type GuardOptions struct {
	// Allow lists non-public address ranges that may be contacted anyway
	// (development, tests, an operator's internal authorization server).
	Allow []netip.Prefix
	// AllowHTTP admits plain http URLs. The SDK's discovery helpers still
	// refuse http for anything but loopback hosts.
	AllowHTTP bool
	// Timeout bounds one request, redirects included; default 10s.
	Timeout time.Duration
}

// maxRedirects bounds the redirects followed when talking to an
// authorization server (metadata documents may legitimately move).
const maxRedirects = 3

// NewHTTPClient returns the client every request to an authorization
// server goes through. Its dialer vets the address actually connected to
// (after name resolution, so DNS rebinding and redirects to private
// addresses fail alike), and it follows only https redirects (or http
// ones when allowed), at most maxRedirects.
func NewHTTPClient(o GuardOptions) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	dialer := &net.Dialer{Timeout: o.Timeout, Control: func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %q", safefetch.ErrForbiddenAddress, address)
		}
		return checkAddr(ap.Addr(), o.Allow)
	}}
	tr := &http.Transport{
		Proxy:                  nil, // a proxy would be vetted, not the target
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    o.Timeout,
		ResponseHeaderTimeout:  o.Timeout,
		MaxResponseHeaderBytes: 16 << 10,
		MaxIdleConns:           16,
		IdleConnTimeout:        30 * time.Second,
		ForceAttemptHTTP2:      true,
	}
	return &http.Client{Transport: tr, Timeout: o.Timeout, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return errors.New("too many redirects")
		}
		return checkScheme(req.URL, o.AllowHTTP)
	}}
}

func checkAddr(ip netip.Addr, allow []netip.Prefix) error {
	err := safefetch.CheckAddr(ip)
	if err == nil {
		return nil
	}
	for _, p := range allow {
		if ip.Zone() == "" && (p.Contains(ip) || p.Contains(ip.Unmap())) {
			return nil
		}
	}
	return err
}

// checkScheme admits https, and http only when allowed.
func checkScheme(u *url.URL, allowHTTP bool) error {
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	default:
		return fmt.Errorf("%w: %q", safefetch.ErrScheme, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: userinfo in URL", safefetch.ErrScheme)
	}
	return nil
}

// checkURL is checkScheme for a URL string an authorization server or a
// resource's metadata gave us.
func checkURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: %q is not an absolute URL", safefetch.ErrScheme, raw)
	}
	return checkScheme(u, allowHTTP)
}

// withClient carries c to golang.org/x/oauth2's requests.
func withClient(ctx context.Context, c *http.Client) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c)
}
