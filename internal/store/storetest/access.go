package storetest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Access entries (internal/access)
// ---------------------------------------------------------------------------

// accessTests are the access-entry cases; Run calls each as a subtest.
var accessTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"AccessEntries", testAccessEntries},
	{"AccessEntryUpsert", testAccessEntryUpsert},
	{"AccessEntryAddOnce", testAccessEntryAddOnce},
	{"AccessEntryAddConcurrent", testAccessEntryAddConcurrent},
	{"AccessEntryExpiry", testAccessEntryExpiry},
}

func entry(kind, id string, atD, expD time.Duration) store.AccessEntry {
	e := store.AccessEntry{Kind: kind, ID: id, At: at(atD)}
	if expD != 0 {
		e.ExpiresAt = at(expD)
	}
	return e
}

func testAccessEntries(t *testing.T, s store.Store) {
	ctx := t.Context()
	list, err := s.ListAccessEntries(ctx, store.AccessRevokedToken, time.Time{})
	must(t, err, "ListAccessEntries on an empty store")
	if list == nil || len(list) != 0 {
		t.Fatalf("ListAccessEntries on an empty store = %#v, want empty non-nil", list)
	}
	b := entry(store.AccessRevokedToken, "jti-b", 0, time.Hour)
	a := entry(store.AccessRevokedToken, "jti-a", time.Minute, 2*time.Hour)
	d := entry(store.AccessDisabledUser, "jti-a", 0, 0) // same ID, another kind: its own key
	for _, e := range []store.AccessEntry{b, a, d} {
		must(t, s.PutAccessEntry(ctx, e), "PutAccessEntry "+e.Kind+" "+e.ID)
	}
	for _, bad := range []store.AccessEntry{{Kind: store.AccessRevokedToken}, {ID: "x"}} {
		if err := s.PutAccessEntry(ctx, bad); err == nil {
			t.Errorf("PutAccessEntry(%+v): no error", bad)
		}
		if err := s.AddAccessEntry(ctx, bad, at(0)); err == nil {
			t.Errorf("AddAccessEntry(%+v): no error", bad)
		}
	}
	list, err = s.ListAccessEntries(ctx, store.AccessRevokedToken, time.Time{})
	must(t, err, "ListAccessEntries(token)")
	equal(t, "tokens, by ID", list, []store.AccessEntry{a, b})
	list, err = s.ListAccessEntries(ctx, store.AccessDisabledUser, at(100*time.Hour))
	must(t, err, "ListAccessEntries(disabled)")
	equal(t, "disabled users (no expiry)", list, []store.AccessEntry{d})
	// now filters out what expired; expiry is exclusive.
	list, err = s.ListAccessEntries(ctx, store.AccessRevokedToken, at(time.Hour))
	must(t, err, "ListAccessEntries(token, 1h)")
	equal(t, "tokens live at 1h", list, []store.AccessEntry{a})
	list, err = s.ListAccessEntries(ctx, store.AccessRevokedToken, at(time.Hour-time.Millisecond).In(time.FixedZone("X", 3600)))
	must(t, err, "ListAccessEntries(token, 1h-1ms)")
	equal(t, "tokens live just before 1h", list, []store.AccessEntry{a, b})

	must(t, s.DeleteAccessEntry(ctx, store.AccessDisabledUser, "jti-a"), "DeleteAccessEntry")
	if err := s.DeleteAccessEntry(ctx, store.AccessDisabledUser, "jti-a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteAccessEntry twice = %v, want ErrNotFound", err)
	}
	list, err = s.ListAccessEntries(ctx, store.AccessRevokedToken, time.Time{})
	must(t, err, "ListAccessEntries after delete")
	equal(t, "tokens untouched by deleting another kind", list, []store.AccessEntry{a, b})
}

func testAccessEntryUpsert(t *testing.T, s store.Store) {
	ctx := t.Context()
	k, id := store.AccessRemovedClient, "c1"
	must(t, s.PutAccessEntry(ctx, entry(k, id, time.Minute, time.Hour)), "Put")
	must(t, s.PutAccessEntry(ctx, entry(k, id, 0, 30*time.Minute)), "Put earlier")
	list, err := s.ListAccessEntries(ctx, k, time.Time{})
	must(t, err, "List")
	equal(t, "an earlier put changes nothing", list, []store.AccessEntry{entry(k, id, time.Minute, time.Hour)})
	must(t, s.PutAccessEntry(ctx, entry(k, id, 2*time.Minute, 2*time.Hour)), "Put later")
	list, err = s.ListAccessEntries(ctx, k, time.Time{})
	must(t, err, "List")
	equal(t, "a later put moves both times", list, []store.AccessEntry{entry(k, id, 2*time.Minute, 2*time.Hour)})
	must(t, s.PutAccessEntry(ctx, entry(k, id, 0, 0)), "Put without expiry")
	must(t, s.PutAccessEntry(ctx, entry(k, id, 0, 3*time.Hour)), "Put with expiry again")
	list, err = s.ListAccessEntries(ctx, k, time.Time{})
	must(t, err, "List")
	equal(t, "never expiring wins", list, []store.AccessEntry{entry(k, id, 2*time.Minute, 0)})
	// Zero At means now.
	before := time.Now().Add(-time.Second)
	must(t, s.PutAccessEntry(ctx, store.AccessEntry{Kind: k, ID: "c2"}), "Put with zero At")
	list, err = s.ListAccessEntries(ctx, k, time.Time{})
	must(t, err, "List")
	if len(list) != 2 || list[1].At.Before(before) {
		t.Errorf("zero At: %+v, want about now", list)
	}
}

func testAccessEntryAddOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := store.AccessUsedAssertion
	e := entry(k, "client jti", 0, time.Minute)
	must(t, s.AddAccessEntry(ctx, e, at(0)), "first Add")
	if err := s.AddAccessEntry(ctx, e, at(30*time.Second)); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("second Add while live = %v, want ErrAlreadyExists", err)
	}
	// Once expired, the key may be used again (replaced, not added twice).
	again := entry(k, "client jti", time.Minute, 3*time.Minute)
	must(t, s.AddAccessEntry(ctx, again, at(time.Minute)), "Add after expiry")
	list, err := s.ListAccessEntries(ctx, k, time.Time{})
	must(t, err, "List")
	equal(t, "replaced entry", list, []store.AccessEntry{again})
	// An entry without expiry is never replaced.
	forever := entry(store.AccessDisabledUser, "u", 0, 0)
	must(t, s.AddAccessEntry(ctx, forever, at(0)), "Add forever")
	if err := s.AddAccessEntry(ctx, forever, at(1000*time.Hour)); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("Add over a never-expiring entry = %v, want ErrAlreadyExists", err)
	}
}

// testAccessEntryAddConcurrent: of many replicas presenting one assertion
// at once, exactly one wins.
func testAccessEntryAddConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.AddAccessEntry(ctx, entry(store.AccessUsedAssertion, "c j", 0, time.Hour), at(0))
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, store.ErrAlreadyExists):
				t.Errorf("Add: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d concurrent Adds won, want 1", wins.Load())
	}
}

func testAccessEntryExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, e := range []store.AccessEntry{
		entry(store.AccessRevokedToken, "old", 0, time.Minute),
		entry(store.AccessRevokedToken, "new", 0, time.Hour),
		entry(store.AccessDisabledUser, "forever", 0, 0),
		entry(store.AccessRevokedGrant, "edge", 0, 10*time.Minute),
	} {
		must(t, s.PutAccessEntry(ctx, e), "Put "+e.ID)
	}
	n, err := s.DeleteExpiredAccessEntries(ctx, at(10*time.Minute))
	must(t, err, "DeleteExpiredAccessEntries")
	if n != 2 {
		t.Errorf("deleted %d, want 2 (old, and edge at its expiry)", n)
	}
	for kind, want := range map[string][]store.AccessEntry{
		store.AccessRevokedToken: {entry(store.AccessRevokedToken, "new", 0, time.Hour)},
		store.AccessDisabledUser: {entry(store.AccessDisabledUser, "forever", 0, 0)},
		store.AccessRevokedGrant: {},
	} {
		list, err := s.ListAccessEntries(ctx, kind, time.Time{})
		must(t, err, "List "+kind)
		equal(t, "left of "+kind, list, want)
	}
}
