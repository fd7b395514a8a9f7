package registration

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbiddenAddress: the metadata URL's host is (or resolved to) an
// address the resolver must not contact: loopback, private, link-local,
// and so on (draft-ietf-oauth-client-id-metadata-document, Security
// Considerations, "Server Side Request Forgery").
var ErrForbiddenAddress = errors.New("address is not publicly routable")

// blockedPrefixes complements netip's classifiers (loopback, private,
// link-local, multicast, unspecified) with the other special-purpose
// ranges of the IANA registries (RFC 6890 and successors) that must not be
// reachable from a fetch a stranger can trigger.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network" (RFC 791); 0.0.0.0 reaches localhost on Linux
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space, CGNAT (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments (RFC 6890)
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1 (RFC 5737)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking (RFC 2544)
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and 255.255.255.255 broadcast
	netip.MustParsePrefix("::/96"),           // unspecified, loopback, deprecated IPv4-compatible (RFC 4291 §2.5.5.1)
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use IPv4/IPv6 translation (RFC 8215)
	netip.MustParsePrefix("100::/64"),        // discard-only (RFC 6666)
	netip.MustParsePrefix("2001::/32"),       // Teredo: tunnels to an IPv4 address we cannot vet (RFC 4380)
	netip.MustParsePrefix("2001:db8::/32"),   // documentation (RFC 3849)
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local (RFC 3879)
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96") // well-known NAT64 (RFC 6052 §2.1)
	sixToFour   = netip.MustParsePrefix("2002::/16")    // 6to4 (RFC 3056 §2)
)

// checkAddr returns nil if ip is a public unicast address, or an error
// wrapping ErrForbiddenAddress. IPv6 forms that embed an IPv4 address
// (mapped, NAT64, 6to4) are judged by that IPv4 address.
func checkAddr(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbiddenAddress)
	}
	if ip.Zone() != "" {
		return fmt.Errorf("%w: %s has a zone", ErrForbiddenAddress, ip)
	}
	orig := ip
	ip = ip.Unmap()
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64Prefix.Contains(ip):
			ip = netip.AddrFrom4([4]byte(b[12:16]))
		case sixToFour.Contains(ip):
			ip = netip.AddrFrom4([4]byte(b[2:6]))
		}
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() ||
		ip.IsMulticast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, orig)
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s", ErrForbiddenAddress, orig)
		}
	}
	return nil
}

// guardControl is a net.Dialer Control hook: it runs after name
// resolution, for each address actually being connected to, before the
// connect. Checking here rather than resolving up front means a DNS answer
// that changes between a check and the connect (DNS rebinding) cannot
// slip a private address past the guard.
func guardControl(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp4", "tcp6":
	default:
		return fmt.Errorf("%w: network %s", ErrForbiddenAddress, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrForbiddenAddress, address)
	}
	return checkAddr(ap.Addr())
}

// guardTransport makes t safe for fetching attacker-chosen URLs: every
// dial goes through a dialer that refuses non-public addresses, and no
// proxy or custom dialer can bypass it: a proxy would make the dialer
// connect to the proxy rather than the target, and the DialTLS hooks
// would skip our dialer entirely.
func guardTransport(t *http.Transport, timeout time.Duration) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: guardControl}
	t.Proxy = nil
	t.DialTLSContext = nil
	t.DialTLS = nil // deprecated, but honoured when set: clear it
	t.Dial = nil
	t.DialContext = d.DialContext
}

// newGuardedTransport is the transport a Resolver builds when given no
// client.
func newGuardedTransport(allowPrivate bool, timeout time.Duration) *http.Transport {
	t := &http.Transport{
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           16,
		IdleConnTimeout:        90 * time.Second,
	}
	if allowPrivate {
		t.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	} else {
		guardTransport(t, timeout)
	}
	return t
}
