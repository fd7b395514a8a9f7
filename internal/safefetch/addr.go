package safefetch

import (
	"fmt"
	"net/netip"
	"syscall"
)

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

// CheckAddr returns nil if ip is a public unicast address, or an error
// wrapping ErrForbiddenAddress. IPv6 forms that embed an IPv4 address
// (mapped, NAT64, 6to4) are judged by that IPv4 address.
func CheckAddr(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbiddenAddress)
	}
	if ip.Zone() != "" {
		return fmt.Errorf("%w: %s has a zone", ErrForbiddenAddress, ip)
	}
	orig := ip
	ip = embeddedIPv4(ip.Unmap())
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

// embeddedIPv4 returns the IPv4 address a NAT64 or 6to4 address leads to,
// or ip itself.
func embeddedIPv4(ip netip.Addr) netip.Addr {
	if !ip.Is6() {
		return ip
	}
	b := ip.As16()
	switch {
	case nat64Prefix.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16]))
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6]))
	}
	return ip
}

// addrGuard decides which addresses may be connected to: public ones, and
// those in allow (an explicit allowance from the config or a test).
type addrGuard struct {
	allow []netip.Prefix
}

func (g addrGuard) check(ip netip.Addr) error {
	err := CheckAddr(ip)
	if err == nil {
		return nil
	}
	if ip.Zone() == "" {
		for _, p := range g.allow {
			if p.Contains(ip) || p.Contains(ip.Unmap()) || p.Contains(embeddedIPv4(ip.Unmap())) {
				return nil
			}
		}
	}
	return err
}

// control is a net.Dialer Control hook: it runs after name resolution, for
// each address actually being connected to, before the connect. Checking
// here rather than when resolving means a DNS answer that changes between
// a check and the connect (DNS rebinding) cannot slip a private address
// past the guard, and every redirect hop is checked the same way.
func (g addrGuard) control(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp4", "tcp6":
	default:
		return fmt.Errorf("%w: network %s", ErrForbiddenAddress, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrForbiddenAddress, address)
	}
	return g.check(ap.Addr())
}
