package tokens

import (
	"crypto/sha256"
	"encoding/base64"
)

// S256Challenge returns the PKCE S256 code challenge of a code verifier:
// BASE64URL(SHA256(verifier)) (RFC 7636 §4.2).
func S256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// VerifyPKCE reports whether verifier is a well-formed code verifier
// (43–128 characters of [A-Za-z0-9-._~], RFC 7636 §4.1) whose S256
// challenge is challenge (§4.6). Only S256 is supported.
func VerifyPKCE(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for i := 0; i < len(verifier); i++ {
		if !isUnreserved(verifier[i]) {
			return false
		}
	}
	return ConstantTimeEqual(S256Challenge(verifier), challenge)
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
