package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Update functions of one row run one at a time
// ---------------------------------------------------------------------------

// testUpdateSerialises pins more than "no update is lost": while one
// Update's function runs, no other Update of the same row has started its
// function. Callers rely on it. internal/connections refreshes a downstream
// token inside UpdateConnection's function, so a replica that waited finds
// the token fresh instead of redeeming the same refresh token again (which
// makes the provider revoke the grant). A backend that read without a row
// lock and retried on conflict (optimistic concurrency) would keep every
// counter right yet run two refreshes at once; this test refuses it.
func testUpdateSerialises(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateClient(ctx, fullClient("c")), "CreateClient")
	must(t, s.CreateUser(ctx, fullUser("u", "alice")), "CreateUser")
	must(t, s.CreateSigningKey(ctx, signingKey("k", at(0))), "CreateSigningKey")
	must(t, s.PutConnection(ctx, connection("alice", "acme", "calendar-api")), "PutConnection")

	// Each case runs one Update of its row whose function calls body.
	cases := []struct {
		name   string
		update func(ctx context.Context, body func()) error
	}{
		{"UpdateClient", func(ctx context.Context, body func()) error {
			return s.UpdateClient(ctx, "c", func(c store.Client) (store.Client, error) { body(); return c, nil })
		}},
		{"UpdateUser", func(ctx context.Context, body func()) error {
			return s.UpdateUser(ctx, "u", func(u store.User) (store.User, error) { body(); return u, nil })
		}},
		{"UpdateSigningKey", func(ctx context.Context, body func()) error {
			return s.UpdateSigningKey(ctx, "k", func(k store.SigningKey) (store.SigningKey, error) { body(); return k, nil })
		}},
		{"UpdateConnection", func(ctx context.Context, body func()) error {
			return s.UpdateConnection(ctx, "alice", "acme", "calendar-api", func(c store.Connection) (store.Connection, error) {
				body()
				return c, nil
			})
		}},
	}
	for _, tc := range cases {
		const workers = 6
		var inside, overlaps atomic.Int32
		body := func() {
			if inside.Add(1) > 1 {
				overlaps.Add(1)
			}
			// Long enough for a second updater to get in if nothing
			// holds it back (a provider round trip is far longer).
			time.Sleep(2 * time.Millisecond)
			inside.Add(-1)
		}
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Go(func() { errs <- tc.update(ctx, body) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, err, "concurrent "+tc.name)
		}
		if n := overlaps.Load(); n > 0 {
			t.Errorf("%s: %d update functions started while another one of the same row was running, want none", tc.name, n)
		}
	}
}
