// Package idp answers "who is this person": the built-in user directory
// (password check against bcrypt or argon2id hashes, with brute-force
// protection) and the sync of configured users into the store. Upstream
// OIDC providers will live in idp/oidc.
package idp

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// ErrBadCredentials is the one answer to a wrong username or password, so
// a caller cannot tell which was wrong.
var ErrBadCredentials = errors.New("wrong username or password")

// ErrLocked means too many recent failures for this user or address.
var ErrLocked = errors.New("too many failed sign-ins; try again later")

// UserStore is what the directory needs from the store.
type UserStore interface {
	GetUserByUsername(ctx context.Context, username string) (store.User, error)
}

// Directory authenticates built-in users.
type Directory struct {
	users   UserStore
	limiter *Limiter
	dummy   string // a hash to compare against when the user is unknown
}

// NewDirectory returns a directory over users, limiting failures with l.
func NewDirectory(users UserStore, l *Limiter) *Directory {
	dummy, _ := bcrypt.GenerateFromPassword([]byte(rand.Text()), bcrypt.DefaultCost)
	return &Directory{users: users, limiter: l, dummy: string(dummy)}
}

// Authenticate checks username and password. addr is the client address
// for brute-force accounting.
func (d *Directory) Authenticate(ctx context.Context, username, password, addr string) (store.User, error) {
	keys := []string{"user:" + strings.ToLower(username), "addr:" + addr}
	if d.limiter != nil && d.limiter.Locked(keys...) {
		return store.User{}, ErrLocked
	}
	u, err := d.users.GetUserByUsername(ctx, username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	hash := u.PasswordHash
	if err != nil || hash == "" {
		hash = d.dummy // spend the same time whether or not the user exists
	}
	ok := VerifyPassword(hash, password)
	if err != nil || !ok || u.PasswordHash == "" || u.Disabled {
		if d.limiter != nil {
			d.limiter.Fail(keys...)
		}
		return store.User{}, ErrBadCredentials
	}
	if d.limiter != nil {
		d.limiter.Reset(keys[0])
	}
	return u, nil
}

// VerifyPassword checks password against a bcrypt ($2a$/$2b$/$2y$) or
// argon2id (PHC string: $argon2id$v=19$m=…,t=…,p=…$salt$hash) hash.
func VerifyPassword(hash, password string) bool {
	switch {
	case strings.HasPrefix(hash, "$2"):
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	case strings.HasPrefix(hash, "$argon2id$"):
		p, salt, key, err := parseArgon2id(hash)
		if err != nil {
			return false
		}
		got := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, uint32(len(key)))
		return subtle.ConstantTimeCompare(got, key) == 1
	}
	return false
}

type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
}

func parseArgon2id(s string) (argonParams, []byte, []byte, error) {
	var p argonParams
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v=19" {
		return p, nil, nil, errors.New("not an argon2id v19 hash")
	}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, fmt.Errorf("bad argon2id parameter %q", kv)
		}
		switch k {
		case "m":
			p.memory = uint32(n)
		case "t":
			p.time = uint32(n)
		case "p":
			if n > 255 {
				return p, nil, nil, errors.New("bad parallelism")
			}
			p.threads = uint8(n)
		}
	}
	// Bound the cost a stored hash can ask for (1 GiB, 10 passes).
	if p.memory == 0 || p.memory > 1<<20 || p.time == 0 || p.time > 10 || p.threads == 0 {
		return p, nil, nil, errors.New("argon2id parameters out of range")
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, err
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 {
		return p, nil, nil, errors.New("bad argon2id hash")
	}
	return p, salt, key, nil
}

// HashPassword returns a bcrypt hash (for `mcpgate user add`).
func HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), 12)
	return string(h), err
}

// Limiter counts failures per key in a sliding window and locks a key
// after max failures until the window has passed.
type Limiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu       sync.Mutex
	failures map[string][]time.Time
}

// NewLimiter returns a limiter; now may be nil.
func NewLimiter(max int, window time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{max: max, window: window, now: now, failures: map[string][]time.Time{}}
}

func (l *Limiter) recent(key string) []time.Time {
	cut := l.now().Add(-l.window)
	ts := l.failures[key]
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.failures, key)
	} else {
		l.failures[key] = ts
	}
	return ts
}

// Locked reports whether any key has reached the failure limit.
func (l *Limiter) Locked(keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if len(l.recent(k)) >= l.max {
			return true
		}
	}
	return false
}

// Fail records a failure for every key.
func (l *Limiter) Fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 100000 {
		l.failures = map[string][]time.Time{} // bounded memory under a flood
	}
	for _, k := range keys {
		l.failures[k] = append(l.recent(k), l.now())
	}
}

// Reset forgets a key's failures (after a success).
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	delete(l.failures, key)
	l.mu.Unlock()
}
