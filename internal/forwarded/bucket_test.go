package forwarded

import "testing"

// TestBucket: what counts as one client for per-client budgets.
func TestBucket(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
	} {
		if got := Bucket(tc.addr); got.String() != tc.want {
			t.Errorf("Bucket(%q) = %s, want %s", tc.addr, got, tc.want)
		}
	}
	if Bucket("not-an-address").IsValid() {
		t.Error("an unparsable address got a bucket")
	}
}
