// Package forwarded decides who a request comes from when mcpgate runs
// behind reverse proxies. X-Forwarded-For, X-Forwarded-Proto and
// X-Forwarded-Host are believed only when the direct peer is one of the
// configured trusted proxies (config trusted_proxies); anyone else could
// write them. The client is then the right-most address in
// X-Forwarded-For that is not itself a trusted proxy: every address to its
// right was appended by a proxy we trust, every address to its left was
// written by the client and proves nothing.
//
// Middleware applies the decision once per request: r.RemoteAddr becomes
// the client's address (so sign-in throttling and logs see the person, not
// the proxy), r.Host the forwarded host, and the Info travels in the
// context for the audit line. The issuer, the resource URIs and cookie
// flags never come from these headers: they derive from the configured
// public_url alone.
package forwarded

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies is a set of trusted proxy networks. The zero value and nil
// trust nobody.
type Proxies struct {
	prefixes []netip.Prefix
}

// ParseProxies reads CIDRs ("10.0.0.0/8", "fd00::/8") or single addresses
// ("127.0.0.1").
func ParseProxies(cidrs []string) (*Proxies, error) {
	p := &Proxies{}
	for _, c := range cidrs {
		pfx, err := parsePrefix(c)
		if err != nil {
			return nil, err
		}
		p.prefixes = append(p.prefixes, pfx)
	}
	return p, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("trusted proxy %q is not a CIDR such as 10.0.0.0/8", s)
		}
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("trusted proxy %q is not an IP address or CIDR", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Trusts reports whether a is a trusted proxy.
func (p *Proxies) Trusts(a netip.Addr) bool {
	if p == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, pfx := range p.prefixes {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// maxHops bounds how many X-Forwarded-For entries are examined.
const maxHops = 64

// Client returns the client address of a request from peer carrying the
// X-Forwarded-For values xff (every header line, in order): peer itself
// unless peer is trusted; else the right-most entry that is not a trusted
// proxy. A malformed entry stops the walk at the last address a trusted
// proxy vouched for, and when every entry is trusted the left-most one is
// the client.
func (p *Proxies) Client(peer netip.Addr, xff []string) netip.Addr {
	peer = peer.Unmap()
	if !p.Trusts(peer) {
		return peer
	}
	entries := splitList(xff)
	client := peer
	for i, hops := len(entries)-1, 0; i >= 0 && hops < maxHops; i, hops = i-1, hops+1 {
		a, ok := parseNode(entries[i])
		if !ok {
			return client
		}
		client = a
		if !p.Trusts(a) {
			return a
		}
	}
	return client
}

// splitList splits comma-separated header values into trimmed entries.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		for e := range strings.SplitSeq(v, ",") {
			out = append(out, strings.TrimSpace(e))
		}
	}
	return out
}

// parseNode reads one X-Forwarded-For entry: an address, with or without
// a port, IPv6 with or without brackets.
func parseNode(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Zone() == "" {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// Info is what mcpgate believes about where a request came from.
type Info struct {
	Client netip.Addr // the client's address (the peer's when nothing is trusted)
	Proto  string     // "http" or "https" as the client used it; "" when unknown
	Host   string     // the Host the client asked for
}

// Resolve decides the Info of r.
func (p *Proxies) Resolve(r *http.Request) Info {
	peer := peerAddr(r.RemoteAddr)
	info := Info{Client: peer, Host: r.Host}
	if r.TLS != nil {
		info.Proto = "https"
	} else {
		info.Proto = "http"
	}
	if !p.Trusts(peer) {
		return info
	}
	info.Client = p.Client(peer, r.Header.Values("X-Forwarded-For"))
	if v := lastEntry(r.Header.Values("X-Forwarded-Proto")); v == "http" || v == "https" {
		info.Proto = v
	}
	if v := lastEntry(r.Header.Values("X-Forwarded-Host")); validHost(v) {
		info.Host = v
	}
	return info
}

// lastEntry is the right-most entry of a list header: the one the
// nearest (trusted) proxy wrote.
func lastEntry(values []string) string {
	e := splitList(values)
	if len(e) == 0 {
		return ""
	}
	return strings.ToLower(e[len(e)-1])
}

// validHost accepts host or host:port with the characters a DNS name or
// an IP literal uses.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]_", c)) {
			return false
		}
	}
	return true
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(remote)
	return a.Unmap()
}

type infoKey struct{}

// Middleware resolves every request once: r.RemoteAddr becomes the
// client's address (port 0 when it came from X-Forwarded-For), r.Host the
// forwarded host, and the Info goes into the context (FromContext).
func Middleware(p *Proxies, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := p.Resolve(r)
		if info.Client.IsValid() && info.Client != peerAddr(r.RemoteAddr) {
			r.RemoteAddr = net.JoinHostPort(info.Client.String(), "0")
		}
		r.Host = info.Host
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)))
	})
}

// FromContext returns the Info Middleware stored.
func FromContext(ctx context.Context) (Info, bool) {
	info, ok := ctx.Value(infoKey{}).(Info)
	return info, ok
}

// ClientAddr is the client address of r as text: Middleware's decision
// when it ran, else the host part of r.RemoteAddr.
func ClientAddr(r *http.Request) string {
	if info, ok := FromContext(r.Context()); ok && info.Client.IsValid() {
		return info.Client.String()
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// Bucket is the unit of one client's addresses, for anything counted per
// client (sign-in throttling, registration rate limits): an IPv4 address
// itself (also when written IPv4-mapped), an IPv6 address's /64. A single
// host or subscriber is routinely given a whole /64 (RFC 6177) and can use
// any address in it, so counting per full IPv6 address would give one
// client 2^64 fresh budgets. An unparsable address gives the zero Prefix
// (IsValid false); the caller decides what such addresses share.
func Bucket(addr string) netip.Prefix {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}
