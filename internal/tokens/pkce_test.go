package tokens

import (
	"strings"
	"testing"
)

func TestVerifyPKCE(t *testing.T) {
	// RFC 7636 Appendix B.
	const (
		rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
		rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	)
	if got := S256Challenge(rfcVerifier); got != rfcChallenge {
		t.Fatalf("S256Challenge = %s, want %s", got, rfcChallenge)
	}
	v43, v128 := strings.Repeat("a", 43), strings.Repeat("~", 128)
	for _, tc := range []struct {
		name                string
		verifier, challenge string
		want                bool
	}{
		{"RFC 7636 appendix B", rfcVerifier, rfcChallenge, true},
		{"wrong challenge", rfcVerifier, S256Challenge(v43), false},
		{"challenge is the plain verifier", rfcVerifier, rfcVerifier, false},
		{"padded challenge", rfcVerifier, rfcChallenge + "=", false},
		{"empty challenge", rfcVerifier, "", false},
		{"43 chars", v43, S256Challenge(v43), true},
		{"128 chars", v128, S256Challenge(v128), true},
		{"all unreserved", "AZaz09-._~" + strings.Repeat("x", 33), S256Challenge("AZaz09-._~" + strings.Repeat("x", 33)), true},
		{"42 chars", v43[:42], S256Challenge(v43[:42]), false},
		{"129 chars", v128 + "~", S256Challenge(v128 + "~"), false},
		{"empty verifier", "", S256Challenge(""), false},
		{"plus", v43[:42] + "+", S256Challenge(v43[:42] + "+"), false},
		{"slash", v43[:42] + "/", S256Challenge(v43[:42] + "/"), false},
		{"equals", v43[:42] + "=", S256Challenge(v43[:42] + "="), false},
		{"space", v43[:42] + " ", S256Challenge(v43[:42] + " "), false},
		{"non-ASCII", v43[:41] + "é", S256Challenge(v43[:41] + "é"), false},
	} {
		if got := VerifyPKCE(tc.verifier, tc.challenge); got != tc.want {
			t.Errorf("%s: VerifyPKCE = %v, want %v", tc.name, got, tc.want)
		}
	}
}
