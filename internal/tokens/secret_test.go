package tokens

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for _, prefix := range []string{PrefixAuthCode, PrefixRefreshToken, PrefixClientSecret, ""} {
		for range 50 {
			s, h := NewSecret(prefix)
			rest, ok := strings.CutPrefix(s, prefix)
			if !ok {
				t.Fatalf("%q lacks prefix %q", s, prefix)
			}
			if b, err := base64.RawURLEncoding.DecodeString(rest); err != nil || len(b) != 32 {
				t.Fatalf("%q: not 32 bytes of base64url (%v)", s, err)
			}
			if h != HashSecret(s) || len(h) != 64 {
				t.Fatalf("hash %q of %q", h, s)
			}
			if seen[s] {
				t.Fatalf("secret %q repeated", s)
			}
			seen[s] = true
			if !CheckSecret(s, h) {
				t.Fatal("CheckSecret rejects the secret")
			}
			if CheckSecret(s+"x", h) || CheckSecret(s, h[:63]) || CheckSecret("", h) {
				t.Fatal("CheckSecret accepts a wrong secret")
			}
		}
	}
}

func TestHashSecret(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2 appendix B.1.
	if got := HashSecret("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("HashSecret(abc) = %s", got)
	}
}

func TestConstantTimeEqual(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"abc", "ab", false},
		{"", "a", false},
	} {
		if got := ConstantTimeEqual(tc.a, tc.b); got != tc.want {
			t.Errorf("ConstantTimeEqual(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}
