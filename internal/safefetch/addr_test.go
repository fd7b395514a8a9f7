package safefetch

import (
	"errors"
	"net/netip"
	"testing"
)

func TestCheckAddr(t *testing.T) {
	forbidden := []string{
		"127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254",               // cloud metadata
		"100.64.0.1", "100.127.255.255", // CGNAT
		"0.0.0.0", "0.1.2.3", "255.255.255.255", "240.0.0.1",
		"224.0.0.1", "239.255.255.250",
		"192.0.0.8", "192.0.2.1", "198.18.0.1", "198.51.100.7", "203.0.113.9",
		"::", "::1", "::127.0.0.1",
		"fc00::1", "fd12:3456::1", // ULA
		"fe80::1", "fec0::1",
		"ff02::1", "ff05::2",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", // IPv4-mapped
		"64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b:1::1", // NAT64 to private
		"2002:a00:1::1", "2002:7f00:1::", // 6to4 of private
		"2001::1", "2001:db8::1", "100::1",
		"fe80::1%eth0",
	}
	for _, s := range forbidden {
		a, err := netip.ParseAddr(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if err := CheckAddr(a); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("CheckAddr(%s) = %v, want ErrForbiddenAddress", s, err)
		}
	}
	allowed := []string{
		"8.8.8.8", "1.1.1.1", "93.184.216.34", "100.128.0.1", "172.32.0.1", "11.0.0.1",
		"2606:4700:4700::1111", "2a00:1450:4001:80b::200e",
		"::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
	}
	for _, s := range allowed {
		if err := CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckAddr(%s) = %v, want nil", s, err)
		}
	}
	if err := CheckAddr(netip.Addr{}); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("CheckAddr(invalid) = %v", err)
	}
}

func TestGuardControl(t *testing.T) {
	tests := []struct {
		network, address string
		ok               bool
	}{
		{"tcp4", "127.0.0.1:443", false},
		{"tcp4", "10.0.0.1:443", false},
		{"tcp4", "169.254.169.254:80", false},
		{"tcp6", "[::1]:443", false},
		{"tcp6", "[fd00::1]:443", false},
		{"tcp4", "8.8.8.8:443", true},
		{"tcp6", "[2606:4700:4700::1111]:443", true},
		{"udp4", "8.8.8.8:53", false},
		{"tcp4", "not-an-address", false},
		{"tcp4", "example.com:443", false}, // always resolved by now; a name is suspicious
	}
	for _, tc := range tests {
		err := addrGuard{}.control(tc.network, tc.address, nil)
		if (err == nil) != tc.ok {
			t.Errorf("control(%s, %s) = %v, want ok=%v", tc.network, tc.address, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("control(%s, %s) = %v, not ErrForbiddenAddress", tc.network, tc.address, err)
		}
	}
}

// TestAllowance: an explicit allowance admits exactly its range, whatever
// form the address takes; nothing else changes.
func TestAllowance(t *testing.T) {
	g := addrGuard{allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	for s, ok := range map[string]bool{
		"127.0.0.1": true, "::ffff:127.0.0.1": true, "64:ff9b::7f00:1": true,
		"127.0.0.2": false, "::1": false, "10.0.0.1": false, "8.8.8.8": true,
	} {
		if err := g.check(netip.MustParseAddr(s)); (err == nil) != ok {
			t.Errorf("check(%s) = %v, want ok=%v", s, err, ok)
		}
	}
}
