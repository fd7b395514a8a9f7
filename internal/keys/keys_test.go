package keys

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate/internal/store"
)

// memStore is an in-memory Store.
type memStore struct {
	mu      sync.Mutex
	keys    map[string]store.SigningKey
	listErr error
	lists   int
}

func newMemStore() *memStore { return &memStore{keys: map[string]store.SigningKey{}} }

func (s *memStore) ListSigningKeys(context.Context) ([]store.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists++
	if s.listErr != nil {
		return nil, s.listErr
	}
	out := make([]store.SigningKey, 0, len(s.keys))
	for _, k := range s.keys {
		k.Private = slices.Clone(k.Private)
		out = append(out, k)
	}
	return out, nil
}

func (s *memStore) CreateSigningKey(_ context.Context, k store.SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k.ID]; ok {
		return store.ErrAlreadyExists
	}
	k.Private = slices.Clone(k.Private)
	s.keys[k.ID] = k
	return nil
}

func (s *memStore) UpdateSigningKey(_ context.Context, id string, update func(store.SigningKey) (store.SigningKey, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return store.ErrNotFound
	}
	k, err := update(k)
	if err != nil {
		return err
	}
	k.ID = id
	s.keys[id] = k
	return nil
}

func (s *memStore) DeleteSigningKey(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[id]; !ok {
		return store.ErrNotFound
	}
	delete(s.keys, id)
	return nil
}

func (s *memStore) get(id string) (store.SigningKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	return k, ok
}

func (s *memStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newManager(t *testing.T, s Store, c *clock, o Options) *Manager {
	t.Helper()
	o.Now = c.Now
	m := New(s, &o)
	if err := m.Init(context.Background()); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return m
}

func signingKID(t *testing.T, m *Manager) string {
	t.Helper()
	k, err := m.Signing()
	if err != nil {
		t.Fatalf("Signing: %v", err)
	}
	return k.ID
}

func publishedKIDs(m *Manager) []string {
	var out []string
	for _, k := range m.PublicKeys().Keys {
		out = append(out, k.KeyID)
	}
	slices.Sort(out)
	return out
}

// eventually polls cond for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestInitCreatesThenReuses(t *testing.T) {
	for _, alg := range []string{"", ES256, RS256} {
		t.Run("alg="+alg, func(t *testing.T) {
			s, c := newMemStore(), newClock()
			m1 := newManager(t, s, c, Options{Algorithm: alg})
			if s.len() != 1 {
				t.Fatalf("store has %d keys after Init, want 1", s.len())
			}
			k, err := m1.Signing()
			if err != nil {
				t.Fatal(err)
			}
			want := alg
			if want == "" {
				want = ES256
			}
			if string(k.Algorithm) != want {
				t.Errorf("alg = %s, want %s", k.Algorithm, want)
			}
			rec, ok := s.get(k.ID)
			if !ok {
				t.Fatalf("signing kid %s not in store", k.ID)
			}
			if !rec.ActiveFrom.Equal(c.Now()) || !rec.CreatedAt.Equal(c.Now()) || !rec.RetiredAt.IsZero() || !rec.ExpiresAt.IsZero() {
				t.Errorf("record times = %+v", rec)
			}

			// A second Manager (restart, another replica) reuses the key.
			c.Add(time.Minute)
			m2 := newManager(t, s, c, Options{Algorithm: alg})
			if s.len() != 1 {
				t.Fatalf("store has %d keys after second Init, want 1", s.len())
			}
			if got := signingKID(t, m2); got != k.ID {
				t.Errorf("second Manager signs with %s, want %s", got, k.ID)
			}
		})
	}
}

func TestStoredKeyIsPrivateJWK(t *testing.T) {
	s, c := newMemStore(), newClock()
	m := newManager(t, s, c, Options{})
	kid := signingKID(t, m)
	rec, _ := s.get(kid)
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(rec.Private); err != nil {
		t.Fatalf("Private is not a JWK: %v", err)
	}
	if jwk.IsPublic() || jwk.KeyID != kid || jwk.Algorithm != ES256 || jwk.Use != "sig" {
		t.Errorf("stored JWK: public=%v kid=%q alg=%q use=%q", jwk.IsPublic(), jwk.KeyID, jwk.Algorithm, jwk.Use)
	}
	if rec.Algorithm != ES256 {
		t.Errorf("record alg = %q", rec.Algorithm)
	}
}

func TestPublicKeysArePublic(t *testing.T) {
	s, c := newMemStore(), newClock()
	m := newManager(t, s, c, Options{})
	set := m.PublicKeys()
	if len(set.Keys) != 1 {
		t.Fatalf("%d keys published, want 1", len(set.Keys))
	}
	k := set.Keys[0]
	if !k.IsPublic() || k.KeyID != signingKID(t, m) || k.Algorithm != ES256 || k.Use != "sig" {
		t.Errorf("published key: public=%v kid=%q alg=%q use=%q", k.IsPublic(), k.KeyID, k.Algorithm, k.Use)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct{ Keys []map[string]any }
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw.Keys[0]["d"]; ok {
		t.Errorf("JWKS leaks the private key: %s", b)
	}
	for _, f := range []string{"kty", "crv", "x", "y", "kid", "alg", "use"} {
		if _, ok := raw.Keys[0][f]; !ok {
			t.Errorf("JWKS key lacks %q: %s", f, b)
		}
	}
}

func TestRotateOverlap(t *testing.T) {
	ctx := context.Background()
	s, c := newMemStore(), newClock()
	m := newManager(t, s, c, Options{Overlap: time.Hour})
	oldKID := signingKID(t, m)

	c.Add(time.Minute)
	rotatedAt := c.Now()
	newKID, err := Rotate(ctx, s, rotatedAt, &Options{Overlap: time.Hour})
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if newKID == oldKID || newKID == "" {
		t.Fatalf("Rotate returned kid %q (old %q)", newKID, oldKID)
	}
	old, _ := s.get(oldKID)
	if !old.RetiredAt.Equal(rotatedAt) || !old.ExpiresAt.Equal(rotatedAt.Add(time.Hour)) {
		t.Errorf("old key retired %v expires %v, want %v and %v", old.RetiredAt, old.ExpiresAt, rotatedAt, rotatedAt.Add(time.Hour))
	}

	// Until reload the Manager keeps signing with the old key.
	if got := signingKID(t, m); got != oldKID {
		t.Errorf("before reload signs with %s, want %s", got, oldKID)
	}
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := signingKID(t, m); got != newKID {
		t.Errorf("after reload signs with %s, want %s", got, newKID)
	}

	both := []string{oldKID, newKID}
	slices.Sort(both)
	for _, tc := range []struct {
		after     time.Duration // since the rotation
		published []string
		oldTrust  bool
	}{
		{0, both, true},
		{59 * time.Minute, both, true},
		{time.Hour, []string{newKID}, false}, // at ExpiresAt: gone, no reload needed
		{2 * time.Hour, []string{newKID}, false},
	} {
		c.Set(rotatedAt.Add(tc.after))
		if got := publishedKIDs(m); !slices.Equal(got, tc.published) {
			t.Errorf("+%v: published %v, want %v", tc.after, got, tc.published)
		}
		if _, ok := m.Lookup(oldKID); ok != tc.oldTrust {
			t.Errorf("+%v: Lookup(old) = %v, want %v", tc.after, ok, tc.oldTrust)
		}
		if _, ok := m.Lookup(newKID); !ok {
			t.Errorf("+%v: Lookup(new) failed", tc.after)
		}
		if got := signingKID(t, m); got != newKID {
			t.Errorf("+%v: signs with %s", tc.after, got)
		}
	}

	// The next rotation deletes the expired key.
	third, err := Rotate(ctx, s, c.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.get(oldKID); ok {
		t.Error("expired key not deleted by Rotate")
	}
	if s.len() != 2 {
		t.Errorf("store has %d keys, want 2 (%s retired, %s new)", s.len(), newKID, third)
	}
}

func TestRotatePrepublish(t *testing.T) {
	ctx := context.Background()
	s, c := newMemStore(), newClock()
	o := Options{Prepublish: 30 * time.Second}
	m := newManager(t, s, c, o)
	oldKID := signingKID(t, m)
	newKID, err := Rotate(ctx, s, c.Now(), &o)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := signingKID(t, m); got != oldKID {
		t.Errorf("before ActiveFrom signs with %s, want old %s", got, oldKID)
	}
	if _, ok := m.Lookup(newKID); !ok {
		t.Error("new key not published ahead of ActiveFrom")
	}
	c.Add(30 * time.Second)
	if got := signingKID(t, m); got != newKID {
		t.Errorf("at ActiveFrom signs with %s, want new %s", got, newKID)
	}
}

func TestManagerPicksUpRotation(t *testing.T) {
	for _, by := range []string{"cli", "another manager"} {
		t.Run(by, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, c := newMemStore(), newClock()
			a := newManager(t, s, c, Options{Reload: 10 * time.Millisecond})
			b := newManager(t, s, c, Options{Reload: 10 * time.Millisecond})
			oldKID := signingKID(t, a)
			if signingKID(t, b) != oldKID {
				t.Fatal("managers disagree before rotation")
			}
			done := make(chan struct{})
			go func() { defer close(done); b.Run(ctx) }()

			var newKID string
			var err error
			if by == "cli" {
				newKID, err = Rotate(ctx, s, c.Now(), nil)
			} else {
				newKID, err = Rotate(ctx, a.store, a.opts.Now(), &a.opts)
				if err == nil {
					err = a.Reload(ctx)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "b to sign with the new key", func() bool {
				k, err := b.Signing()
				return err == nil && k.ID == newKID
			})
			if _, ok := b.Lookup(oldKID); !ok {
				t.Error("old key no longer trusted during the overlap")
			}
			cancel()
			<-done
		})
	}
}

func TestLookupMissReloadsEarly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, c := newMemStore(), newClock()
	m := newManager(t, s, c, Options{Reload: time.Hour})
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()

	newKID, err := Rotate(ctx, s, c.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Lookup(newKID); ok {
		t.Fatal("new key known before any reload")
	}
	eventually(t, "the miss to trigger a reload", func() bool {
		_, ok := m.Lookup(newKID)
		return ok
	})

	// Further misses within minKickInterval do not reload again.
	s.mu.Lock()
	lists := s.lists
	s.mu.Unlock()
	for range 100 {
		m.Lookup("nope")
	}
	time.Sleep(50 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lists != lists {
		t.Errorf("unknown kids caused %d more store reads", s.lists-lists)
	}
	cancel()
	<-done
}

func TestConcurrentFirstKeys(t *testing.T) {
	// Two replicas created a key each at the same instant: both are
	// published and both replicas sign with the same one.
	s, c := newMemStore(), newClock()
	for range 2 {
		k, err := Generate(ES256)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := k.record(c.Now(), c.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateSigningKey(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	m1 := newManager(t, s, c, Options{})
	m2 := newManager(t, s, c, Options{})
	if s.len() != 2 {
		t.Errorf("Init created keys although some were usable: %d", s.len())
	}
	if signingKID(t, m1) != signingKID(t, m2) {
		t.Error("replicas sign with different keys")
	}
	if len(m1.PublicKeys().Keys) != 2 {
		t.Error("not every key is published")
	}

	// And concurrent Inits on an empty store end up agreeing too.
	s = newMemStore()
	ms := make([]*Manager, 4)
	var wg sync.WaitGroup
	for i := range ms {
		ms[i] = New(s, &Options{Now: c.Now})
		wg.Go(func() {
			if err := ms[i].Init(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, m := range ms {
		if err := m.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range ms[1:] {
		if signingKID(t, m) != signingKID(t, ms[0]) {
			t.Error("replicas sign with different keys after concurrent Init")
		}
	}
}

func TestInitReplacesUnusableKeys(t *testing.T) {
	s, c := newMemStore(), newClock()
	now := c.Now()
	retired, err := Generate(ES256)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := retired.record(now.Add(-2*time.Hour), now.Add(-2*time.Hour))
	rec.RetiredAt = now.Add(-time.Hour)
	rec.ExpiresAt = now.Add(time.Hour)
	for _, r := range []store.SigningKey{
		rec,
		{ID: "garbage", Algorithm: ES256, Private: []byte(`{"kty":"EC"}`), ActiveFrom: now},
		{ID: "public", Algorithm: ES256, Private: mustJSON(t, retired.Public()), ActiveFrom: now},
	} {
		if err := s.CreateSigningKey(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	m := newManager(t, s, c, Options{})
	kid := signingKID(t, m)
	if kid == retired.ID || kid == "garbage" || kid == "public" {
		t.Errorf("signs with unusable key %s", kid)
	}
	if got, want := publishedKIDs(m), sortedStrings(kid, retired.ID); !slices.Equal(got, want) {
		t.Errorf("published %v, want %v", got, want)
	}
}

func TestReloadErrorKeepsKeys(t *testing.T) {
	s, c := newMemStore(), newClock()
	m := newManager(t, s, c, Options{})
	kid := signingKID(t, m)
	s.listErr = errors.New("db down")
	if err := m.Reload(context.Background()); err == nil {
		t.Fatal("Reload succeeded with a failing store")
	}
	if got := signingKID(t, m); got != kid {
		t.Errorf("signs with %s after failed reload, want %s", got, kid)
	}
	if _, ok := m.Lookup(kid); !ok {
		t.Error("key lost after failed reload")
	}
}

func TestSigningBeforeInit(t *testing.T) {
	m := New(newMemStore(), nil)
	if _, err := m.Signing(); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("Signing before Init: %v", err)
	}
	if _, ok := m.Lookup("x"); ok {
		t.Error("Lookup before Init found a key")
	}
}

func TestUnsupportedAlgorithm(t *testing.T) {
	for _, alg := range []string{"HS256", "none", "ES384", "EdDSA"} {
		if err := New(newMemStore(), &Options{Algorithm: alg}).Init(context.Background()); err == nil {
			t.Errorf("Init with %s succeeded", alg)
		}
		if _, err := Rotate(context.Background(), newMemStore(), time.Now(), &Options{Algorithm: alg}); err == nil {
			t.Errorf("Rotate with %s succeeded", alg)
		}
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	s, c := newMemStore(), newClock()
	m := newManager(t, s, c, Options{})
	kid := signingKID(t, m)
	if n := testing.AllocsPerRun(100, func() { m.Lookup(kid) }); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
}

func BenchmarkLookup(b *testing.B) {
	s := newMemStore()
	m := New(s, nil)
	if err := m.Init(context.Background()); err != nil {
		b.Fatal(err)
	}
	for range 3 {
		if _, err := Rotate(context.Background(), s, time.Now(), nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := m.Reload(context.Background()); err != nil {
		b.Fatal(err)
	}
	k, _ := m.Signing()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := m.Lookup(k.ID); !ok {
				panic("lookup failed")
			}
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sortedStrings(s ...string) []string {
	slices.Sort(s)
	return s
}
