package sqlstore

import (
	"errors"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

func TestRebind(t *testing.T) {
	numbered := &Dialect{Numbered: true}
	question := &Dialect{}
	tests := []struct {
		name, query, want string
	}{
		{"none", "SELECT 1", "SELECT 1"},
		{"in order", "UPDATE t SET a = ? WHERE b = ? AND c = ?", "UPDATE t SET a = $1 WHERE b = $2 AND c = $3"},
		{"ten and more", "VALUES (" + marks(11) + ")", "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"},
		{"in a string", "SELECT '?', ? FROM t WHERE x = 'it''s ?'", "SELECT '?', $1 FROM t WHERE x = 'it''s ?'"},
		{"in an identifier", `SELECT "a?b" FROM t WHERE c = ?`, `SELECT "a?b" FROM t WHERE c = $1`},
		{"statement builders", updateSQL("t", []string{"id", "a", "b"}), "UPDATE t SET (a, b) = ($1, $2) WHERE id = $3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := numbered.rebind(tc.query); got != tc.want {
				t.Errorf("numbered rebind(%q) = %q, want %q", tc.query, got, tc.want)
			}
			if got := question.rebind(tc.query); got != tc.query {
				t.Errorf("? rebind(%q) = %q, want it unchanged", tc.query, got)
			}
		})
	}
}

// Time arguments reach the driver in the dialect's encoding; everything
// else, the zero time (NULL) included, as it was.
func TestEncode(t *testing.T) {
	d := &Dialect{Time: func(t time.Time) any { return t.UnixMicro() }}
	at := time.Date(2026, 12, 3, 16, 0, 0, 1_500, time.UTC)
	got := d.encode([]any{"a", ts(at), ts(time.Time{}), 7, []byte("x")})
	if got[0] != "a" || got[1] != at.UnixMicro() || got[2] != nil || got[3] != 7 || string(got[4].([]byte)) != "x" {
		t.Errorf("encode = %#v", got)
	}
}

// Errors name the dialect and keep the sentinel for errors.Is.
func TestErrors(t *testing.T) {
	d := &Dialect{Name: "pg"}
	err := d.notFound(`client "c"`)
	if !errors.Is(err, store.ErrNotFound) || err.Error() != `pg: client "c": not found` {
		t.Errorf("notFound = %q", err)
	}
	err = d.errorf("update of %s: %w", "x", store.ErrAlreadyExists)
	if !errors.Is(err, store.ErrAlreadyExists) || err.Error() != "pg: update of x: already exists" {
		t.Errorf("errorf = %q", err)
	}
}
