package idp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
	"golang.org/x/crypto/bcrypt"
)

type users map[string]store.User

func (u users) GetUserByUsername(_ context.Context, name string) (store.User, error) {
	if x, ok := u[name]; ok {
		return x, nil
	}
	return store.User{}, store.ErrNotFound
}

// comparisons records every hash comparison the directory makes.
type comparisons struct {
	mu     sync.Mutex
	hashes []string
}

func (c *comparisons) verify(hash, password string) bool {
	c.mu.Lock()
	c.hashes = append(c.hashes, hash)
	c.mu.Unlock()
	return VerifyPassword(hash, password)
}

func mustHash(t *testing.T, pw string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestEveryAttemptComparesOneHashOfTheUsersCost: an unknown username, a
// user without a password (signs in through an IdP), a disabled user and
// a wrong password each cost exactly one comparison against a hash of the
// same cost, so timing does not reveal which usernames exist (audit
// finding 11, user enumeration by bcrypt cost).
func TestEveryAttemptComparesOneHashOfTheUsersCost(t *testing.T) {
	const cost = 6 // not bcrypt.DefaultCost, which the old dummy used
	alice := mustHash(t, "alice-pw", cost)
	dir := users{
		"alice": {ID: "alice", Username: "alice", PasswordHash: alice},
		"sso":   {ID: "sso", Username: "sso"},
		"off":   {ID: "off", Username: "off", PasswordHash: mustHash(t, "off-pw", cost), Disabled: true},
	}
	tests := []struct{ name, user, password string }{
		{"unknown user", "mallory", "guess"},
		{"no password", "sso", "guess"},
		{"disabled", "off", "off-pw"},
		{"wrong password", "alice", "guess"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c comparisons
			d := NewDirectory(dir, nil, &DirectoryOptions{Verify: c.verify, DummyLike: alice})
			_, err := d.Authenticate(context.Background(), tt.user, tt.password, "192.0.2.1")
			if !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("err = %v, want ErrBadCredentials", err)
			}
			if len(c.hashes) != 1 {
				t.Fatalf("%d comparisons, want 1", len(c.hashes))
			}
			if got, err := bcrypt.Cost([]byte(c.hashes[0])); err != nil || got != cost {
				t.Errorf("compared against a hash of cost %d (%v), want %d", got, err, cost)
			}
		})
	}
}

// TestDummyFollowsUsersHashes: without a configured example, the dummy
// takes the shape of the hashes the directory meets (here argon2id).
func TestDummyFollowsUsersHashes(t *testing.T) {
	const argon = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$" + "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	var c comparisons
	d := NewDirectory(users{"bob": {ID: "bob", Username: "bob", PasswordHash: argon}}, nil, &DirectoryOptions{Verify: c.verify})
	_, _ = d.Authenticate(context.Background(), "bob", "x", "a")
	_, _ = d.Authenticate(context.Background(), "nobody", "x", "a")
	if len(c.hashes) != 2 || hashShape(c.hashes[1]) != hashShape(argon) {
		t.Errorf("dummy %q has shape %q, want %q", c.hashes[len(c.hashes)-1], hashShape(c.hashes[len(c.hashes)-1]), hashShape(argon))
	}
}

// TestGuessingFromOneAddressDoesNotLockTheUserOut: failures count per
// (user, address): an attacker's address is slowed down, the user signs in
// from their own (audit finding 12).
func TestGuessingFromOneAddressDoesNotLockTheUserOut(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	dir := users{"alice": {ID: "alice", Username: "alice", PasswordHash: mustHash(t, "alice-pw", bcrypt.MinCost)}}
	d := NewDirectory(dir, NewLimiter(5, 15*time.Minute, clock), &DirectoryOptions{DummyLike: "$2a$04$"})
	ctx := context.Background()
	for i := range 5 {
		if _, err := d.Authenticate(ctx, "alice", "wrong", "198.51.100.7"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	if _, err := d.Authenticate(ctx, "alice", "alice-pw", "198.51.100.7"); !errors.Is(err, ErrLocked) {
		t.Errorf("the guessing address: %v, want ErrLocked", err)
	}
	if _, err := d.Authenticate(ctx, "ALICE", "alice-pw", "198.51.100.7"); !errors.Is(err, ErrLocked) {
		t.Errorf("the guessing address, other case: %v, want ErrLocked", err)
	}
	if u, err := d.Authenticate(ctx, "alice", "alice-pw", "203.0.113.9"); err != nil || u.ID != "alice" {
		t.Errorf("alice from her own address: %v", err)
	}
	now = now.Add(BaseDelay)
	if _, err := d.Authenticate(ctx, "alice", "alice-pw", "198.51.100.7"); err != nil {
		t.Errorf("after the delay: %v", err)
	}
}

// TestGuessingFromOneIPv6PrefixIsOneAddress: a guesser holding an IPv6
// /64 (what one host or subscriber is usually given) cannot get a fresh
// budget per address by rotating inside it, nor by writing its IPv4
// address IPv4-mapped or with a zone; another /64 is another address.
func TestGuessingFromOneIPv6PrefixIsOneAddress(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	dir := users{"alice": {ID: "alice", Username: "alice", PasswordHash: mustHash(t, "alice-pw", bcrypt.MinCost)}}
	ctx := context.Background()
	tests := []struct {
		name    string
		guesses []string // one failure from each
		then    string   // locked from here
	}{
		{"rotating in one /64", []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3", "2001:db8:1:2:a:b:c:d", "2001:db8:1:2::5"}, "2001:db8:1:2::6"},
		{"zone and case", []string{"fe80::1%eth0", "fe80::2%eth1", "FE80::3", "fe80::4", "fe80::5%1"}, "fe80::6"},
		{"IPv4-mapped", []string{"198.51.100.7", "::ffff:198.51.100.7", "::ffff:c633:6407", "198.51.100.7", "::ffff:198.51.100.7"}, "198.51.100.7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDirectory(dir, NewLimiter(len(tc.guesses), 15*time.Minute, clock), &DirectoryOptions{DummyLike: "$2a$04$"})
			for i, addr := range tc.guesses {
				if _, err := d.Authenticate(ctx, "alice", "wrong", addr); !errors.Is(err, ErrBadCredentials) {
					t.Fatalf("guess %d from %s: %v", i+1, addr, err)
				}
			}
			if _, err := d.Authenticate(ctx, "alice", "alice-pw", tc.then); !errors.Is(err, ErrLocked) {
				t.Errorf("from %s after %d guesses in its bucket: %v, want ErrLocked", tc.then, len(tc.guesses), err)
			}
			if u, err := d.Authenticate(ctx, "alice", "alice-pw", "2001:db8:1:3::1"); err != nil || u.ID != "alice" {
				t.Errorf("alice from another /64: %v", err)
			}
		})
	}
}

// TestLimiterBackoff: the delay doubles with every failure past the free
// ones, up to the maximum; a quiet key is forgotten.
func TestLimiterBackoff(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := NewLimiter(3, 10*time.Second, func() time.Time { return now })
	want := []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		l.Fail("k")
		if got := l.Wait("k"); got != w {
			t.Errorf("after failure %d: wait %v, want %v", i+1, got, w)
		}
	}
	if l.Wait("other") != 0 {
		t.Error("another key is locked")
	}
	now = now.Add(10 * time.Second)
	l.Fail("k") // quiet for the maximum: counting starts again
	if got := l.Wait("k"); got != 0 {
		t.Errorf("after a quiet spell: wait %v, want 0", got)
	}
	l.Reset("k")
	if l.size() != 0 {
		t.Errorf("%d keys after reset", l.size())
	}
}

// TestLimiterBounded: a flood of distinct keys keeps at most MaxKeys,
// dropping the key quiet the longest rather than everything (which would
// let a flood wipe an attacker's own backoff).
func TestLimiterBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := NewLimiter(1, time.Hour, func() time.Time { return now })
	l.maxKeys = 1000
	l.Fail("attacker")
	for i := range l.maxKeys + 10 {
		now = now.Add(time.Microsecond)
		l.Fail(fmt.Sprint("flood-", i))
		if i == 0 {
			l.Fail("attacker") // stays recent
		}
	}
	if n := l.size(); n > l.maxKeys {
		t.Errorf("%d keys, want at most %d", n, l.maxKeys)
	}
	if !l.Locked("attacker") {
		t.Error("the flood wiped the attacker's backoff")
	}
	if l.Locked("flood-0") {
		t.Error("the oldest flood key is still kept")
	}
}

func TestHashShape(t *testing.T) {
	for _, h := range []string{"", "plain", "$2a$99$x", "$argon2id$v=19$m=0,t=1,p=1$AA$AA"} {
		if s := hashShape(h); s != "" {
			t.Errorf("hashShape(%q) = %q, want empty", h, s)
		}
	}
	if s := hashShape(mustHash(t, "x", bcrypt.MinCost)); !strings.HasPrefix(s, "bcrypt:4") {
		t.Errorf("bcrypt shape %q", s)
	}
}
