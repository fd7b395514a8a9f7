package vault

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KeySize is the size of a vault master key in bytes (AES-256).
const KeySize = 32

// maxKeyFile bounds what LoadKey reads: a key is 64 hex digits.
const maxKeyFile = 4 << 10

// idSize is the size of a key ID in sealed records (Key.ID is its hex).
const idSize = 8

// HKDF labels: one key, separate derived values.
const (
	infoKeyID = "mcpgate vault v1: key id"
	infoKEK   = "mcpgate vault v1: key-encryption key"
)

// Key is a vault master key: the key-encryption key that wraps every
// record's data key. ID names it in sealed records, the store and logs; it
// is derived from the key (HKDF), so it tells nothing about it. Formatting a
// Key (fmt, slog) shows the ID only, never the key.
type Key struct {
	ID     string
	secret []byte
}

// String returns "vault key <ID>".
func (k Key) String() string { return "vault key " + k.ID }

// Format prints String for every verb, so no verb prints the key.
func (k Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// LogValue logs the ID only.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// newKey makes a Key of raw key bytes (copied).
func newKey(b []byte) (Key, error) {
	if len(b) != KeySize {
		return Key{}, fmt.Errorf("vault: the key must be %d bytes (64 hex digits or 44 base64 characters), not %d bytes", KeySize, len(b))
	}
	id, err := hkdf.Key(sha256.New, b, nil, infoKeyID, idSize)
	if err != nil {
		return Key{}, fmt.Errorf("vault: key id: %w", err)
	}
	return Key{ID: hex.EncodeToString(id), secret: bytes.Clone(b)}, nil
}

// ParseKey reads a key written as hex (64 digits) or base64 (standard or
// URL alphabet, padded or not); surrounding white space is ignored. Errors
// never quote the text.
func ParseKey(text string) (Key, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return Key{}, errors.New("vault: empty key")
	}
	if len(text)%2 == 0 && isHex(text) {
		b, err := hex.DecodeString(text)
		if err != nil { // cannot happen after isHex; the error would quote a character
			return Key{}, errors.New("vault: the key is not valid hex")
		}
		return newKey(b)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil {
			return newKey(b)
		}
	}
	return Key{}, errors.New("vault: the key is neither hex nor base64")
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// GenerateKey returns a new random key.
func GenerateKey() (Key, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return Key{}, fmt.Errorf("vault: generate key: %w", err)
	}
	defer clear(b)
	return newKey(b)
}

// LoadKey reads the master key from file when file is not "", otherwise
// from the environment variable named env. The value is hex or base64 (see
// ParseKey). A key file must be a regular file that neither group nor
// others may read or write (mode 0600 or 0400; not checked on Windows).
func LoadKey(file, env string) (Key, error) {
	switch {
	case file != "":
		return loadKeyFile(file)
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || strings.TrimSpace(v) == "" {
			return Key{}, fmt.Errorf("vault: environment variable %s is not set", env)
		}
		k, err := ParseKey(v)
		if err != nil {
			return Key{}, fmt.Errorf("%w (from environment variable %s)", err, env)
		}
		return k, nil
	default:
		return Key{}, errors.New("vault: no key: set a key file or an environment variable")
	}
}

func loadKeyFile(path string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, fmt.Errorf("vault: key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat() // of the file opened, not of whatever the path names now
	if err != nil {
		return Key{}, fmt.Errorf("vault: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Key{}, fmt.Errorf("vault: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return Key{}, fmt.Errorf("vault: key file %s has mode %04o: group and others must have no access to it (chmod 600 %s)", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	defer clear(b)
	if err != nil {
		return Key{}, fmt.Errorf("vault: key file %s: read: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return Key{}, fmt.Errorf("vault: key file %s is too large to hold a key", path)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return Key{}, fmt.Errorf("%w (in key file %s)", err, path)
	}
	return k, nil
}

// GenerateKeyFile writes a new random key to path, as hex, with mode 0600,
// creating the parent directory (0700) if needed, and returns it. It
// refuses to overwrite an existing file: losing a key loses everything it
// sealed.
func GenerateKeyFile(path string) (Key, error) {
	k, err := GenerateKey()
	if err != nil {
		return Key{}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Key{}, fmt.Errorf("vault: key file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return Key{}, fmt.Errorf("vault: key file %s already exists; not overwriting it: %w", path, err)
	}
	if err != nil {
		return Key{}, fmt.Errorf("vault: key file: %w", err)
	}
	text := []byte(hex.EncodeToString(k.secret) + "\n")
	defer clear(text)
	_, err = f.Write(text)
	if err == nil {
		err = f.Chmod(0o600) // whatever the umask did
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return Key{}, fmt.Errorf("vault: key file %s: write: %w", path, err)
	}
	return k, nil
}
