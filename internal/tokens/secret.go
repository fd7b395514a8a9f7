package tokens

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// Prefixes of the opaque secrets, so secret scanners can spot them.
const (
	PrefixAuthCode     = "mgc_"
	PrefixRefreshToken = "mgr_"
	PrefixClientSecret = "mgs_"
)

// secretBytes is the entropy of a secret: 256 bits.
const secretBytes = 32

// NewSecret returns a new opaque secret — prefix followed by 32 random
// bytes in base64url — and its HashSecret, which is what gets stored.
func NewSecret(prefix string) (secret, hash string) {
	secret = prefix + randomString(secretBytes)
	return secret, HashSecret(secret)
}

// HashSecret returns the hex SHA-256 of secret (prefix included). A fast
// hash suits secrets with 256 bits of entropy; it is the lookup key for
// authorization codes and refresh tokens and the stored client secret.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CheckSecret reports, in constant time, whether secret hashes to hash.
func CheckSecret(secret, hash string) bool {
	return ConstantTimeEqual(HashSecret(secret), hash)
}

// ConstantTimeEqual reports whether a and b are equal, taking a time that
// depends only on their lengths.
func ConstantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
