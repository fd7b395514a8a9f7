// Package sqlite is mcpgate's embedded storage backend: store.Store on one
// SQLite file, through modernc.org/sqlite (pure Go, no cgo). The queries
// are internal/store/sqlstore's, shared with PostgreSQL; this package opens
// the database and says how SQLite differs (its sqlstore.Dialect).
//
// The database runs in WAL mode with a busy timeout and foreign keys on.
// Writes go through a single connection whose transactions start with
// BEGIN IMMEDIATE, so an Update's read-modify-write holds the write lock
// from its first read (no row lock is needed) and no change is lost, within
// this process and against other processes opening the same file; reads use
// a separate pool and never wait for writers. ":memory:" opens a private
// in-memory database (one connection for everything), for tests.
//
// Open applies the schema migrations (internal/store/migrations/sqlite,
// with goose); Migrate does the same on its own. Times are kept as Unix
// microseconds (UTC), lists as JSON text. The behaviours store.go leaves
// open are pinned by internal/store/storetest, which this backend passes.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mcpgate/mcpgate/internal/store/migrations"
	"github.com/mcpgate/mcpgate/internal/store/sqlstore"
)

// busyTimeoutMS is how long a statement waits for a lock held by another
// connection (another process, or a reader during a checkpoint).
const busyTimeoutMS = 10_000

// Store is the SQLite store: sqlstore's, with the SQLite Dialect.
type Store = sqlstore.Store

// dialect is how SQLite differs: ? placeholders; no row lock (the writer's
// BEGIN IMMEDIATE already holds the database's write lock, so Update
// functions of one row never overlap); times as INTEGER Unix microseconds;
// no retries (a busy database is waited for by busy_timeout instead).
var dialect = sqlstore.Dialect{
	Name:       "sqlite",
	Time:       func(t time.Time) any { return t.UnixMicro() },
	IsConflict: isConflict,
	Migrate:    migrate,
}

// Open opens (creating it and its parent directory if needed) the SQLite
// database at path and brings its schema up to date. path ":memory:" opens
// a new, private in-memory database.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	if strings.Contains(path, "?") {
		return nil, fmt.Errorf("sqlite: database path %q contains '?'", path)
	}
	memory := path == ":memory:"
	if !memory {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		if err := restrictFiles(path); err != nil {
			return nil, err
		}
	}
	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", busyTimeoutMS)

	w, err := sql.Open("sqlite", path+"?"+common+"&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// One writer connection, kept forever (an in-memory database lives
	// only as long as its connection).
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	var r *sql.DB // nil: the writer reads too (in memory)
	if !memory {
		r, err = sql.Open("sqlite", path+"?"+common+"&_pragma=query_only(1)")
		if err != nil {
			_ = w.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		n := max(4, runtime.GOMAXPROCS(0))
		r.SetMaxOpenConns(n)
		r.SetMaxIdleConns(n)
	}
	s := sqlstore.New(dialect, w, r)
	if err := s.Migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// migrate applies the migrations the database does not have yet, through
// the writer.
func migrate(ctx context.Context, w *sql.DB) error {
	if err := sqlstore.Goose(ctx, w, goose.DialectSQLite3, migrations.SQLite()); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

// isConflict tells a unique or primary-key violation.
func isConflict(err error) bool {
	var e *msqlite.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return true
		}
	}
	return false
}
