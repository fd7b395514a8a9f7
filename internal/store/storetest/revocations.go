package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Grant revocations
// ---------------------------------------------------------------------------

func revocation(userID, clientID string, d time.Duration) store.GrantRevocation {
	return store.GrantRevocation{UserID: userID, ClientID: clientID, RevokedAt: at(d)}
}

func testGrantRevocations(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, since := range []time.Time{{}, at(0)} {
		list, err := s.ListGrantRevocations(ctx, since)
		must(t, err, "ListGrantRevocations on an empty store")
		if list == nil || len(list) != 0 {
			t.Fatalf("ListGrantRevocations(%s) on an empty store = %#v, want empty non-nil", fmtTime(since), list)
		}
	}

	aliceC1 := revocation("alice", "c1", 2*time.Minute)
	aliceAll := revocation("alice", "", time.Minute) // every client: a key of its own
	bobC1 := revocation("bob", "c1", time.Minute)    // same time as aliceAll: by user
	bobAll := revocation("bob", "", 3*time.Minute)
	carolC2 := revocation("carol", "c2", 0)
	aliceC2 := revocation("alice", "c2", 3*time.Minute) // same time as bobAll
	for _, r := range []store.GrantRevocation{bobAll, aliceC1, carolC2, bobC1, aliceC2, aliceAll} {
		must(t, s.PutGrantRevocation(ctx, r), "PutGrantRevocation "+r.UserID+"/"+r.ClientID)
	}
	if err := s.PutGrantRevocation(ctx, store.GrantRevocation{ClientID: "c1", RevokedAt: at(0)}); err == nil {
		t.Error("PutGrantRevocation without a user ID: no error")
	}

	all := []store.GrantRevocation{carolC2, aliceAll, bobC1, aliceC1, aliceC2, bobAll}
	list, err := s.ListGrantRevocations(ctx, time.Time{})
	must(t, err, "ListGrantRevocations(zero)")
	equal(t, "all revocations", list, all)
	list, err = s.ListGrantRevocations(ctx, at(-time.Hour))
	must(t, err, "ListGrantRevocations(long before)")
	equal(t, "revocations since long before", list, all)

	// since is inclusive.
	list, err = s.ListGrantRevocations(ctx, at(time.Minute))
	must(t, err, "ListGrantRevocations(since 1m)")
	equal(t, "revocations since 1m", list, all[1:])
	list, err = s.ListGrantRevocations(ctx, at(time.Minute+time.Millisecond))
	must(t, err, "ListGrantRevocations(since 1m+1ms)")
	equal(t, "revocations since 1m+1ms", list, all[3:])
	list, err = s.ListGrantRevocations(ctx, at(3*time.Minute))
	must(t, err, "ListGrantRevocations(since 3m)")
	equal(t, "revocations since 3m", list, all[4:])
	list, err = s.ListGrantRevocations(ctx, at(3*time.Minute+time.Millisecond))
	must(t, err, "ListGrantRevocations(after the last)")
	if list == nil || len(list) != 0 {
		t.Errorf("ListGrantRevocations(after the last) = %#v, want empty non-nil", list)
	}
	// A since in another zone is the same instant.
	list, err = s.ListGrantRevocations(ctx, at(3*time.Minute).In(time.FixedZone("X", -7*3600)))
	must(t, err, "ListGrantRevocations(since 3m, another zone)")
	equal(t, "revocations since 3m (another zone)", list, all[4:])

	// Put again keeps the latest RevokedAt: a later one moves the row, an
	// earlier or equal one changes nothing.
	must(t, s.PutGrantRevocation(ctx, revocation("alice", "", 4*time.Minute)), "PutGrantRevocation(later)")
	must(t, s.PutGrantRevocation(ctx, revocation("bob", "", 2*time.Minute)), "PutGrantRevocation(earlier)")
	must(t, s.PutGrantRevocation(ctx, revocation("carol", "c2", 0)), "PutGrantRevocation(same)")
	aliceAll.RevokedAt = at(4 * time.Minute)
	list, err = s.ListGrantRevocations(ctx, time.Time{})
	must(t, err, "ListGrantRevocations after upserts")
	equal(t, "revocations after upserts", list, []store.GrantRevocation{carolC2, bobC1, aliceC1, aliceC2, bobAll, aliceAll})

	// The key is exact: user and client, case and all; "" is a client ID
	// like any other for the key.
	odd := []store.GrantRevocation{
		revocation("Alice", "", 5*time.Minute),
		revocation("alice", "C1", 5*time.Minute),
		revocation("it's", "ünïcødé ✓", 5*time.Minute),
	}
	for _, r := range odd {
		must(t, s.PutGrantRevocation(ctx, r), "PutGrantRevocation "+r.UserID+"/"+r.ClientID)
	}
	list, err = s.ListGrantRevocations(ctx, at(5*time.Minute))
	must(t, err, "ListGrantRevocations(odd keys)")
	equal(t, "revocations with odd keys", list, odd)
	list, err = s.ListGrantRevocations(ctx, time.Time{})
	must(t, err, "ListGrantRevocations(all, odd keys)")
	if len(list) != len(all)+len(odd) {
		t.Errorf("ListGrantRevocations = %d rows, want %d (a key matched another)", len(list), len(all)+len(odd))
	}
}

func testGrantRevocationDefaults(t *testing.T, s store.Store) {
	ctx := t.Context()
	before := time.Now().Add(-time.Millisecond)
	must(t, s.PutGrantRevocation(ctx, store.GrantRevocation{UserID: "u"}), "PutGrantRevocation(zero RevokedAt)")
	after := time.Now().Add(time.Millisecond)
	list, err := s.ListGrantRevocations(ctx, time.Time{})
	must(t, err, "ListGrantRevocations")
	if len(list) != 1 {
		t.Fatalf("ListGrantRevocations = %#v, want one", list)
	}
	got := list[0]
	if got.UserID != "u" || got.ClientID != "" {
		t.Errorf("revocation = %q/%q, want u/\"\"", got.UserID, got.ClientID)
	}
	if got.RevokedAt.Before(before) || got.RevokedAt.After(after) {
		t.Errorf("RevokedAt = %s, want the time of PutGrantRevocation (%s..%s)", fmtTime(got.RevokedAt), fmtTime(before), fmtTime(after))
	}
	if got.RevokedAt.Location() != time.UTC {
		t.Errorf("RevokedAt location %q, want UTC", got.RevokedAt.Location())
	}

	// A zero RevokedAt on an existing row is now too: later, so it wins.
	must(t, s.PutGrantRevocation(ctx, revocation("v", "c", 0)), "PutGrantRevocation v")
	before = time.Now().Add(-time.Millisecond)
	must(t, s.PutGrantRevocation(ctx, store.GrantRevocation{UserID: "v", ClientID: "c"}), "PutGrantRevocation v (zero RevokedAt)")
	list, err = s.ListGrantRevocations(ctx, time.Time{})
	must(t, err, "ListGrantRevocations after the second put")
	if len(list) != 2 || list[0].UserID != "u" || list[1].UserID != "v" {
		t.Fatalf("ListGrantRevocations after the second put = %#v, want u then v", list)
	}
	if list[1].RevokedAt.Before(before) {
		t.Errorf("RevokedAt after a put with zero RevokedAt = %s, want >= %s", fmtTime(list[1].RevokedAt), fmtTime(before))
	}
}

func testDeleteGrantRevocationsBefore(t *testing.T, s store.Store) {
	ctx := t.Context()
	old1 := revocation("alice", "", 0)
	old2 := revocation("bob", "c1", 30*time.Second)
	edge := revocation("carol", "c1", time.Minute) // RevokedAt == before: kept
	live := revocation("alice", "c1", 2*time.Minute)
	for _, r := range []store.GrantRevocation{live, edge, old2, old1} {
		must(t, s.PutGrantRevocation(ctx, r), "PutGrantRevocation "+r.UserID+"/"+r.ClientID)
	}

	n, err := s.DeleteGrantRevocationsBefore(ctx, time.Time{})
	must(t, err, "DeleteGrantRevocationsBefore(zero)")
	if n != 0 {
		t.Errorf("DeleteGrantRevocationsBefore(zero) = %d, want 0", n)
	}
	// The other sweep leaves revocations alone.
	_, err = s.DeleteExpired(ctx, at(time.Hour))
	must(t, err, "DeleteExpired")

	n, err = s.DeleteGrantRevocationsBefore(ctx, at(time.Minute))
	must(t, err, "DeleteGrantRevocationsBefore")
	if n != 2 {
		t.Errorf("DeleteGrantRevocationsBefore(1m) = %d, want 2", n)
	}
	list, err := s.ListGrantRevocations(ctx, time.Time{})
	must(t, err, "ListGrantRevocations after delete")
	equal(t, "revocations after delete", list, []store.GrantRevocation{edge, live})

	n, err = s.DeleteGrantRevocationsBefore(ctx, at(time.Minute))
	must(t, err, "DeleteGrantRevocationsBefore again")
	if n != 0 {
		t.Errorf("DeleteGrantRevocationsBefore again = %d, want 0", n)
	}

	// A deleted revocation can be recorded again, even with an older time.
	must(t, s.PutGrantRevocation(ctx, old1), "PutGrantRevocation after delete")
	list, err = s.ListGrantRevocations(ctx, time.Time{})
	must(t, err, "ListGrantRevocations after put again")
	equal(t, "revocations after put again", list, []store.GrantRevocation{old1, edge, live})

	n, err = s.DeleteGrantRevocationsBefore(ctx, at(time.Hour))
	must(t, err, "DeleteGrantRevocationsBefore(all)")
	if n != 3 {
		t.Errorf("DeleteGrantRevocationsBefore(all) = %d, want 3", n)
	}
	list, err = s.ListGrantRevocations(ctx, time.Time{})
	must(t, err, "ListGrantRevocations after deleting all")
	if list == nil || len(list) != 0 {
		t.Errorf("ListGrantRevocations after deleting all = %#v, want empty non-nil", list)
	}
}

// Concurrent revocations of one grant (replicas, or a user and an admin at
// once) leave the latest RevokedAt, whatever order they land in.
func testGrantRevocationConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	const workers = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for i := range workers {
		// Times in scrambled order; the largest is (workers-1) seconds.
		d := time.Duration((i*7)%workers) * time.Second
		wg.Go(func() { errs <- s.PutGrantRevocation(ctx, revocation("alice", "c1", d)) })
		wg.Go(func() { errs <- s.PutGrantRevocation(ctx, revocation("alice", "", d)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err, "concurrent PutGrantRevocation")
	}
	latest := (workers - 1) * time.Second
	list, err := s.ListGrantRevocations(ctx, time.Time{})
	must(t, err, "ListGrantRevocations")
	equal(t, "revocations after concurrent puts", list, []store.GrantRevocation{
		revocation("alice", "", latest),
		revocation("alice", "c1", latest),
	})
}
