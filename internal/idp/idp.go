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

	"github.com/mcpgate/mcpgate/internal/forwarded"
	"github.com/mcpgate/mcpgate/internal/store"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// ErrBadCredentials is the one answer to a wrong username or password, so
// a caller cannot tell which was wrong.
var ErrBadCredentials = errors.New("wrong username or password")

// ErrLocked means too many recent failures for this user from this
// client address; the caller must wait before the next attempt counts.
var ErrLocked = errors.New("too many failed sign-ins; try again later")

// UserStore is what the directory needs from the store.
type UserStore interface {
	GetUserByUsername(ctx context.Context, username string) (store.User, error)
}

// DirectoryOptions tunes a Directory. The zero value is usable.
type DirectoryOptions struct {
	// Verify compares a password with a stored hash; VerifyPassword when
	// nil. Tests count comparisons with it.
	Verify func(hash, password string) bool
	// DummyLike is a stored hash whose algorithm and cost the dummy hash
	// copies (typically a configured user's), so that an unknown username
	// costs as much as a wrong password from the start. Later the dummy
	// follows the hashes the directory sees. Default: a bcrypt hash of
	// HashPassword's cost.
	DummyLike string
}

// Directory authenticates built-in users.
type Directory struct {
	users   UserStore
	limiter *Limiter
	verify  func(hash, password string) bool

	mu         sync.Mutex
	dummy      string // compared when the user is unknown or has no password
	dummyShape string // the algorithm and cost of dummy (see hashShape)
}

// NewDirectory returns a directory over users, slowing guessing with l
// (nil: no limit). opts may be nil.
func NewDirectory(users UserStore, l *Limiter, opts *DirectoryOptions) *Directory {
	var o DirectoryOptions
	if opts != nil {
		o = *opts
	}
	if o.Verify == nil {
		o.Verify = VerifyPassword
	}
	d := &Directory{users: users, limiter: l, verify: o.Verify}
	if o.DummyLike == "" {
		o.DummyLike = "$2a$12$"
	}
	d.dummyShape = "pending:" + o.DummyLike
	return d
}

// Authenticate checks username and password. addr is the client address:
// failures are counted per (username, address), so someone guessing from
// one address slows down only their own attempts, never the user's own
// sign-in from elsewhere (audit finding 12).
//
// Every attempt costs one hash comparison of the same algorithm and cost,
// whether the user exists, has no password (signs in through an identity
// provider) or is disabled, so the answer's timing does not tell which
// usernames exist (audit finding 11).
func (d *Directory) Authenticate(ctx context.Context, username, password, addr string) (store.User, error) {
	key := limiterKey(username, addr)
	if d.limiter != nil {
		if d.limiter.Locked(key) {
			return store.User{}, ErrLocked
		}
		// Count the attempt before checking it, so parallel guesses cannot
		// all slip in before the first failure is recorded.
		d.limiter.Fail(key)
	}
	u, err := d.users.GetUserByUsername(ctx, username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	hash := u.PasswordHash
	if err != nil || hash == "" {
		hash = d.dummyHash() // spend the same time whether or not the user exists
	} else {
		d.learn(hash)
	}
	ok := d.verify(hash, password)
	if err != nil || !ok || u.PasswordHash == "" || u.Disabled {
		return store.User{}, ErrBadCredentials
	}
	if d.limiter != nil {
		d.limiter.Reset(key)
	}
	return u, nil
}

// maxKeyUsername bounds how much of a username a limiter key keeps, so
// huge made-up usernames cannot blow up the limiter's memory.
const maxKeyUsername = 256

// limiterKey is the throttling key of a sign-in attempt: the username
// (case-folded, bounded) from one client address bucket (addrBucket).
func limiterKey(username, addr string) string {
	u := strings.ToLower(username)
	if len(u) > maxKeyUsername {
		u = u[:maxKeyUsername]
	}
	return u + "\x00" + addrBucket(addr)
}

// addrBucket is the unit of one client's addresses (forwarded.Bucket: an
// IPv4 address itself, an IPv6 address's /64), as registration counts
// them; anything unparsable is kept as written.
func addrBucket(addr string) string {
	if p := forwarded.Bucket(addr); p.IsValid() {
		return p.String()
	}
	return addr
}

// dummyHash returns a hash of a random password with the algorithm and
// cost of the users' hashes, generating it on first use.
func (d *Directory) dummyHash() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if like, pending := strings.CutPrefix(d.dummyShape, "pending:"); pending {
		d.dummy, d.dummyShape = makeDummy(like)
	}
	return d.dummy
}

// learn makes the dummy follow the shape of a real user's hash, so an
// unknown username keeps costing what a known one does.
func (d *Directory) learn(hash string) {
	shape := hashShape(hash)
	if shape == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dummyShape != shape {
		d.dummyShape = "pending:" + hash
	}
}

// hashShape names the algorithm and cost parameters of a hash ("" when
// it is not one VerifyPassword reads): two hashes of one shape cost the
// same to compare.
func hashShape(hash string) string {
	switch {
	case strings.HasPrefix(hash, "$2"):
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return ""
		}
		return "bcrypt:" + strconv.Itoa(cost)
	case strings.HasPrefix(hash, "$argon2id$"):
		p, salt, key, err := parseArgon2id(hash)
		if err != nil {
			return ""
		}
		return fmt.Sprintf("argon2id:%d:%d:%d:%d:%d", p.memory, p.time, p.threads, len(salt), len(key))
	}
	return ""
}

// makeDummy hashes a random password with the shape of like (bcrypt at
// HashPassword's cost when like is not a usable hash) and returns the
// hash with its shape.
func makeDummy(like string) (hash, shape string) {
	password := []byte(rand.Text())
	if p, salt, key, err := parseArgon2id(like); err == nil {
		s := make([]byte, len(salt))
		_, _ = rand.Read(s)
		k := argon2.IDKey(password, s, p.time, p.memory, p.threads, uint32(len(key)))
		h := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", p.memory, p.time, p.threads,
			base64.RawStdEncoding.EncodeToString(s), base64.RawStdEncoding.EncodeToString(k))
		return h, hashShape(h)
	}
	cost, err := bcrypt.Cost([]byte(like))
	if err != nil || cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		cost = hashCost
	}
	h, err := bcrypt.GenerateFromPassword(password, cost)
	if err != nil { // only for a bad cost, excluded above
		h, _ = bcrypt.GenerateFromPassword(password, hashCost)
	}
	return string(h), hashShape(string(h))
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

// hashCost is the bcrypt cost of HashPassword.
const hashCost = 12

// HashPassword returns a bcrypt hash (for `mcpgate user add`).
func HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), hashCost)
	return string(h), err
}
