package access

import (
	"context"
	"fmt"

	"github.com/mcpgate/mcpgate/internal/store"
)

// Declared names the users and clients a config declares.
type Declared struct {
	Users   []string
	Clients []string
}

// SyncDeclared makes the config the desired state at start (and reload):
// a user or client declared before (at the last start, or in previous,
// e.g. rows an older version copied into the store) and not any more is
// cut off — its tokens issued until now are refused on every replica —
// and now is remembered for the next start. It returns what it cut off.
func (c *Checker) SyncDeclared(ctx context.Context, now, previous Declared) (removed Declared, err error) {
	if c.st == nil {
		return Declared{}, nil
	}
	for _, k := range []struct {
		kind    string
		now     []string
		prev    []string
		cut     func(context.Context, string) error
		removed *[]string
	}{
		{store.AccessConfigUser, now.Users, previous.Users, func(ctx context.Context, id string) error { return c.RevokeUser(ctx, id, "") }, &removed.Users},
		{store.AccessConfigClient, now.Clients, previous.Clients, c.RemoveClient, &removed.Clients},
	} {
		stored, err := c.st.ListAccessEntries(ctx, k.kind, c.o.Now())
		if err != nil {
			return removed, fmt.Errorf("access: read declared %s: %w", k.kind, err)
		}
		declared := map[string]bool{}
		for _, id := range k.now {
			declared[id] = true
		}
		before := map[string]bool{}
		for _, e := range stored {
			before[e.ID] = true
		}
		for _, id := range k.prev {
			before[id] = true
		}
		for id := range before {
			if declared[id] {
				continue
			}
			// Cut off first, forget after: a crash in between cuts again.
			if err := k.cut(ctx, id); err != nil {
				return removed, err
			}
			*k.removed = append(*k.removed, id)
			if err := c.st.DeleteAccessEntry(ctx, k.kind, id); err != nil && !isNotFound(err) {
				return removed, fmt.Errorf("access: forget declared %s %q: %w", k.kind, id, err)
			}
		}
		for id := range declared {
			if err := c.st.PutAccessEntry(ctx, store.AccessEntry{Kind: k.kind, ID: id, At: c.o.Now()}); err != nil {
				return removed, fmt.Errorf("access: remember declared %s %q: %w", k.kind, id, err)
			}
		}
	}
	return removed, nil
}
