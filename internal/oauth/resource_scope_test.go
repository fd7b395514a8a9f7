package oauth

import (
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/store"
)

// prefixHierarchy: "x" covers every "x.…".
type prefixHierarchy struct{}

func (prefixHierarchy) Covers(held, need string) bool {
	return held == need || strings.HasPrefix(need, held+".")
}
func (prefixHierarchy) Narrower(string) []string { return nil }

// TestResourceHierarchy: narrow scopes under an offered broad one are
// offered, and a client registered for the broad scope may obtain them.
func TestResourceHierarchy(t *testing.T) {
	flat := &Resource{Scopes: []string{"bq", "base"}}
	tree := &Resource{Scopes: []string{"bq", "base"}, Hierarchy: prefixHierarchy{}}
	asked := []string{"bq.read", "base", "other"}
	if got := flat.Grantable(asked); !slices.Equal(got, []string{"base"}) {
		t.Errorf("flat Grantable = %v", got)
	}
	if got := tree.Grantable(asked); !slices.Equal(got, []string{"bq.read", "base"}) {
		t.Errorf("tree Grantable = %v", got)
	}
	c := store.Client{ID: "c", Scope: "bq"}
	if got := flat.LimitToClient(c, asked); len(got) != 0 {
		t.Errorf("flat LimitToClient = %v", got)
	}
	if got := tree.LimitToClient(c, asked); !slices.Equal(got, []string{"bq.read"}) {
		t.Errorf("tree LimitToClient = %v", got)
	}
	if got := tree.LimitToClient(store.Client{ID: "open"}, asked); !slices.Equal(got, asked) {
		t.Errorf("a client without a registered scope is not limited: %v", got)
	}
}
