package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/migrations"
	"github.com/pressly/goose/v3"
)

// TestMigrationMovesDisabledFlags: migration 00005 moves users disabled in
// their row into the access state (so disabling is kept in one place, for
// declared and stored users alike) and clears the row flag.
func TestMigrationMovesDisabledFlags(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.SQLite(), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO users (id, username, disabled, updated_at) VALUES ('bob', 'bob', 1, 1700000000000000), ('amy', 'amy', 0, NULL)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	es, err := s.ListAccessEntries(ctx, store.AccessDisabledUser, time.Time{})
	if err != nil || len(es) != 1 || es[0].ID != "bob" || !es[0].ExpiresAt.IsZero() {
		t.Fatalf("disabled users after the migration: %+v %v", es, err)
	}
	if u, err := s.GetUser(ctx, "bob"); err != nil || u.Disabled {
		t.Errorf("bob's row flag after the migration: %+v %v, want cleared", u, err)
	}
}
