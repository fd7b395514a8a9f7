package access

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
)

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "access.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// clock is an injected time.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// TestCheck: each kind of cut-off refuses exactly what it names.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	alice := Subject{UserID: "alice", ClientID: "app", JTI: "j1", GrantID: "g1", IssuedAt: t0.Add(-time.Minute)}
	later := alice
	later.JTI, later.GrantID, later.IssuedAt = "j2", "g2", t0.Add(time.Second)
	for _, tc := range []struct {
		name     string
		cut      func(c *Checker) error
		subject  Subject
		want     error
		survives []Subject // still allowed
	}{
		{"nothing", func(*Checker) error { return nil }, alice, nil, nil},
		{"token revoked", func(c *Checker) error { return c.RevokeToken(ctx, "j1", t0.Add(time.Hour)) }, alice, ErrRevoked, []Subject{later}},
		{"parent revoked", func(c *Checker) error { return c.RevokeToken(ctx, "j1", t0.Add(time.Hour)) },
			Subject{UserID: "alice", ClientID: "app", JTI: "minted", ParentJTI: "j1", IssuedAt: t0}, ErrRevoked, []Subject{later}},
		{"grant revoked", func(c *Checker) error { return c.RevokeGrant(ctx, "g1") }, alice, ErrRevoked, []Subject{later}},
		{"user disabled", func(c *Checker) error { return c.DisableUser(ctx, "alice") }, alice, ErrDisabled,
			[]Subject{{UserID: "bob", ClientID: "app", IssuedAt: t0}}},
		{"user and client revoked", func(c *Checker) error { return c.RevokeUser(ctx, "alice", "app") }, alice, ErrRevoked,
			[]Subject{later, {UserID: "alice", ClientID: "other", IssuedAt: t0.Add(-time.Minute)}}},
		{"user revoked for every client", func(c *Checker) error { return c.RevokeUser(ctx, "alice", "") },
			Subject{UserID: "alice", ClientID: "other", IssuedAt: t0.Add(-time.Minute)}, ErrRevoked, []Subject{later}},
		{"client removed", func(c *Checker) error { return c.RemoveClient(ctx, "app") },
			Subject{UserID: "app", ClientID: "app", IssuedAt: t0.Add(-time.Second)}, ErrRevoked,
			[]Subject{{UserID: "app", ClientID: "app", IssuedAt: t0.Add(time.Second)}, {UserID: "alice", ClientID: "x", IssuedAt: t0}}},
		{"enabled again", func(c *Checker) error {
			if err := c.DisableUser(ctx, "alice"); err != nil {
				return err
			}
			return c.EnableUser(ctx, "alice")
		}, alice, ErrRevoked, []Subject{later}}, // enabling does not revive old tokens
	} {
		for _, backed := range []bool{false, true} {
			name := tc.name + "/memory"
			if backed {
				name = tc.name + "/stored"
			}
			t.Run(name, func(t *testing.T) {
				clk := &clock{t0}
				var st Store
				if backed {
					st = openStore(t)
				}
				c := New(st, &Options{Now: clk.now})
				if err := tc.cut(c); err != nil {
					t.Fatal(err)
				}
				if err := c.Check(ctx, tc.subject); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
					t.Errorf("Check(%+v) = %v, want %v", tc.subject, err, tc.want)
				}
				for _, s := range tc.survives {
					if err := c.Check(ctx, s); err != nil {
						t.Errorf("Check(%+v) = %v, want allowed", s, err)
					}
				}
				if !backed {
					return
				}
				// A fresh process over the same store (a restart, another
				// replica) agrees once it has read the store.
				fresh := New(st, &Options{Now: clk.now})
				if err := fresh.Reload(ctx); err != nil {
					t.Fatal(err)
				}
				if err := fresh.Check(ctx, tc.subject); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
					t.Errorf("after restart: Check = %v, want %v", err, tc.want)
				}
			})
		}
	}
}

// TestReplicas: a change on one replica reaches another at its next
// reload (Run calls Reload every Options.Refresh), not before; its own
// process applies it at once.
func TestReplicas(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	a, b := New(st, nil), New(st, nil)
	sub := Subject{UserID: "alice", ClientID: "app", JTI: "j", IssuedAt: time.Now().Add(-time.Minute)}
	if err := a.RevokeToken(ctx, "j", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if a.Check(ctx, sub) == nil {
		t.Error("the replica that revoked still accepts the token")
	}
	if b.Check(ctx, sub) != nil {
		t.Error("the other replica refused before reading the store (the test proves nothing)")
	}
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if b.Check(ctx, sub) == nil {
		t.Error("the other replica accepts the token after reloading")
	}
}

// TestRunRefreshes: Run re-reads the store on its interval (bounded time
// for another replica's change).
func TestRunRefreshes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := openStore(t)
	b := New(st, &Options{Refresh: 10 * time.Millisecond})
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	if err := New(st, nil).DisableUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !b.Disabled("alice") {
		if time.Now().After(deadline) {
			t.Fatal("Run never picked up the change")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

// racingStore lets a write land while a reload reads.
type racingStore struct {
	Store
	during func()
}

func (r *racingStore) ListAccessEntries(ctx context.Context, kind string, now time.Time) ([]store.AccessEntry, error) {
	es, err := r.Store.ListAccessEntries(ctx, kind, now)
	if r.during != nil && kind == store.AccessRevokedToken {
		f := r.during
		r.during = nil
		f()
	}
	return es, err
}

// TestReloadKeepsRacingChange: a local change stored after a reload began
// reading is not undone when that reload swaps its state in.
func TestReloadKeepsRacingChange(t *testing.T) {
	ctx := context.Background()
	rs := &racingStore{Store: openStore(t)}
	c := New(rs, nil)
	rs.during = func() {
		if err := c.RevokeToken(ctx, "late", time.Now().Add(time.Hour)); err != nil {
			t.Error(err)
		}
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Check(ctx, Subject{JTI: "late"}) == nil {
		t.Error("a revocation racing a reload was lost")
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Check(ctx, Subject{JTI: "late"}) == nil || len(c.pending) != 0 {
		t.Errorf("after a second reload: pending %d", len(c.pending))
	}
}

// TestFirstUse: a single-use value is accepted once across replicas, and
// again only once it expired.
func TestFirstUse(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clk := &clock{t0}
	a, b := New(st, &Options{Now: clk.now}), New(st, &Options{Now: clk.now})
	mem := New(nil, &Options{Now: clk.now})
	for name, pair := range map[string][2]*Checker{"two replicas": {a, b}, "memory": {mem, mem}} {
		if err := pair[0].FirstUse(ctx, "c1 jti", t0.Add(time.Minute)); err != nil {
			t.Fatalf("%s: first use: %v", name, err)
		}
		if err := pair[1].FirstUse(ctx, "c1 jti", t0.Add(time.Minute)); !errors.Is(err, ErrReplayed) {
			t.Errorf("%s: replay = %v, want ErrReplayed", name, err)
		}
	}
}

// TestSyncDeclared: what the config no longer declares is cut off; what
// it still declares is not, and the next start remembers.
func TestSyncDeclared(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clk := &clock{t0}
	c := New(st, &Options{Now: clk.now})
	removed, err := c.SyncDeclared(ctx, Declared{Users: []string{"alice", "bob"}, Clients: []string{"agent"}}, Declared{Clients: []string{"legacy"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed.Clients, []string{"legacy"}) || len(removed.Users) != 0 {
		t.Errorf("first start removed %+v, want the legacy client only", removed)
	}
	clk.t = t0.Add(time.Hour)
	c2 := New(st, &Options{Now: clk.now})
	removed, err = c2.SyncDeclared(ctx, Declared{Users: []string{"alice"}}, Declared{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed.Users)
	if !slices.Equal(removed.Users, []string{"bob"}) || !slices.Equal(removed.Clients, []string{"agent"}) {
		t.Errorf("second start removed %+v", removed)
	}
	old := t0.Add(30 * time.Minute)
	if c2.Check(ctx, Subject{UserID: "bob", ClientID: "x", IssuedAt: old}) == nil {
		t.Error("a removed user's token is accepted")
	}
	if c2.Check(ctx, Subject{UserID: "agent", ClientID: "agent", IssuedAt: old}) == nil {
		t.Error("a removed client's token is accepted")
	}
	if err := c2.Check(ctx, Subject{UserID: "alice", ClientID: "x", IssuedAt: old}); err != nil {
		t.Errorf("a declared user's token: %v", err)
	}
}

// BenchmarkCheck is the gateway's per-request cost of the predicate.
func BenchmarkCheck(b *testing.B) {
	ctx := context.Background()
	c := New(nil, nil)
	for i := range 1000 {
		_ = c.RevokeToken(ctx, "jti-"+string(rune('a'+i%26))+time.Duration(i).String(), time.Now().Add(time.Hour))
	}
	_ = c.RevokeUser(ctx, "bob", "")
	_ = c.DisableUser(ctx, "carol")
	s := Subject{UserID: "alice", ClientID: "app", JTI: "0123456789abcdef0123", GrantID: "grant-0123456789", IssuedAt: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if c.Check(ctx, s) != nil {
			b.Fatal("refused")
		}
	}
}

// TestRevokedParentOutlivesItsChildren: a token exchanged from (or an
// identity token minted for) an access token may outlive it: it is minted
// while the parent is valid and lives its own TTL, up to MaxTokenAge.
// Revoking the parent must refuse the child for as long as the child can
// live; a revocation kept only until the parent's own expiry was swept
// away while the child was still valid, and the child worked again.
func TestRevokedParentOutlivesItsChildren(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t0}
	st := openStore(t)
	opts := &Options{Now: clk.now, MaxTokenAge: time.Hour}
	c := New(st, opts)
	parentExp := t0.Add(5 * time.Minute)
	// Minted a minute before the parent expires, alive for 30 more.
	child := Subject{UserID: "alice", ClientID: "app", JTI: "exchanged", ParentJTI: "j1", IssuedAt: parentExp.Add(-time.Minute)}
	if err := c.RevokeToken(ctx, "j1", parentExp); err != nil {
		t.Fatal(err)
	}
	clk.t = parentExp.Add(10 * time.Minute) // the parent has expired; the child has not
	c.Sweep(ctx)
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ctx, child); !errors.Is(err, ErrRevoked) {
		t.Errorf("the child of a revoked token, after the parent expired: %v, want ErrRevoked", err)
	}
	fresh := New(st, opts)
	if err := fresh.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Check(ctx, child); !errors.Is(err, ErrRevoked) {
		t.Errorf("another replica: %v, want ErrRevoked", err)
	}
}
