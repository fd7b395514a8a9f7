package sqlite_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/migrations"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
)

// TestClientActivityMigration: self-registered clients that exist when
// migration 00007 runs count as used at that moment, so an upgrade does
// not delete clients in use; the idle rule applies to them afterwards.
func TestClientActivityMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
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
	if _, err := db.ExecContext(ctx, `INSERT INTO clients (id, kind, created_at) VALUES ('old-dcr', 'dynamic', ?)`,
		time.Now().Add(-30*24*time.Hour).UnixMicro()); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	s, err := sqlite.Open(ctx, path) // runs 00005… including 00007
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	if n, err := s.DeleteStaleClients(ctx, now.Add(-24*time.Hour), now.Add(-90*24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("after the upgrade: deleted %d, %v; want 0", n, err)
	}
	if n, err := s.DeleteStaleClients(ctx, time.Time{}, now.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("idle rule: deleted %d, %v; want 1", n, err)
	}
	if _, err := s.GetClient(ctx, "old-dcr"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetClient after expiry: %v", err)
	}
}
