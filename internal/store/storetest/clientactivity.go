package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Client activity (store.ClientActivity, optional)
// ---------------------------------------------------------------------------

// testClientActivity: unused dynamic clients expire after the unused
// cut-off, used ones after the idle cut-off; TouchClient keeps the later
// time; other kinds are never deleted.
func testClientActivity(t *testing.T, s store.Store) {
	ca, ok := s.(store.ClientActivity)
	if !ok {
		t.Skip("the store does not implement store.ClientActivity")
	}
	ctx := t.Context()
	mk := func(id, kind string, created time.Duration) {
		c := fullClient(id)
		c.Kind, c.CreatedAt = kind, at(created)
		must(t, s.CreateClient(ctx, c), "CreateClient "+id)
	}
	mk("never-used-old", store.ClientDynamic, 0)
	mk("never-used-new", store.ClientDynamic, 2*time.Hour)
	mk("used-long-ago", store.ClientDynamic, 0)
	mk("used-recently", store.ClientDynamic, 0)
	mk("static-old", store.ClientStatic, 0)
	must(t, ca.TouchClient(ctx, "used-long-ago", at(time.Hour)), "TouchClient")
	must(t, ca.TouchClient(ctx, "used-recently", at(time.Hour)), "TouchClient")
	must(t, ca.TouchClient(ctx, "used-recently", at(5*time.Hour)), "TouchClient later")
	must(t, ca.TouchClient(ctx, "used-recently", at(2*time.Hour)), "TouchClient earlier (no change)")
	must(t, ca.TouchClient(ctx, "static-old", at(time.Hour)), "TouchClient static")
	if err := ca.TouchClient(ctx, "", at(0)); err == nil {
		t.Error("TouchClient with an empty id succeeded")
	}

	n, err := ca.DeleteStaleClients(ctx, time.Time{}, time.Time{})
	must(t, err, "DeleteStaleClients(zero, zero)")
	if n != 0 {
		t.Errorf("DeleteStaleClients with both rules off deleted %d", n)
	}
	n, err = ca.DeleteStaleClients(ctx, at(time.Hour), at(3*time.Hour))
	must(t, err, "DeleteStaleClients")
	if n != 2 {
		t.Errorf("DeleteStaleClients deleted %d, want 2", n)
	}
	list, err := s.ListClients(ctx)
	must(t, err, "ListClients")
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	if want := []string{"never-used-new", "static-old", "used-recently"}; !slices.Equal(ids, want) {
		t.Errorf("left %v, want %v", ids, want)
	}
	// used-recently's later touch (5h) was kept: the idle rule at 4h spares it.
	n, err = ca.DeleteStaleClients(ctx, time.Time{}, at(4*time.Hour))
	must(t, err, "DeleteStaleClients idle 4h")
	if n != 0 {
		t.Errorf("an earlier TouchClient moved last use back: deleted %d", n)
	}
}
