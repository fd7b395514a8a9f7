// Package postgres is mcpgate's storage backend for several replicas:
// store.Store on PostgreSQL, through database/sql with the pgx driver
// (github.com/jackc/pgx/v5/stdlib). The queries are
// internal/store/sqlstore's, shared with SQLite; this package connects and
// says how PostgreSQL differs (its sqlstore.Dialect).
//
// Every Update, ConsumeAuthCode and RotateRefreshToken reads its row with
// SELECT … FOR UPDATE inside a READ COMMITTED transaction, so concurrent
// read-modify-writes on one row queue behind each other (two redemptions of
// one code: exactly one wins); a transaction aborted by a deadlock or a
// serialization failure is retried from the start (which is why update
// functions must be pure).
//
// Open applies the schema migrations (internal/store/migrations/postgres,
// with goose) under a session advisory lock, so replicas starting together
// migrate once; Migrate does the same on its own. Tables live in the
// connection's current schema (search_path), so one database can hold
// several installations or test runs. Times are timestamptz (microseconds),
// lists JSON text. The behaviours store.go leaves open are pinned by
// internal/store/storetest, which this backend passes.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/mcpgate/mcpgate/internal/store/migrations"
	"github.com/mcpgate/mcpgate/internal/store/sqlstore"
)

// Store is the PostgreSQL store: sqlstore's, with the PostgreSQL Dialect.
type Store = sqlstore.Store

// dialect is how PostgreSQL differs: $n placeholders; the row of a
// read-modify-write locked with FOR UPDATE (transactions run concurrently
// at READ COMMITTED); times as timestamptz; deadlocks (40P01) and
// serialization failures (40001) retried.
var dialect = sqlstore.Dialect{
	Name:       "postgres",
	Numbered:   true,
	LockRow:    " FOR UPDATE",
	Time:       func(t time.Time) any { return t.UTC() },
	IsConflict: isConflict,
	Retryable:  retryable,
	Migrate:    migrate,
}

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string, as libpq and pgx take them) and brings its schema up to
// date.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(5)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s := sqlstore.New(dialect, db, nil)
	if err := s.Migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// migrate applies the migrations the database does not have yet.
// Concurrent runs on one schema (replicas starting together) wait for each
// other: the whole run, goose's version-table check included, holds a
// session advisory lock keyed by the schema.
func migrate(ctx context.Context, db *sql.DB) (err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock("+migrationLockKey+")"); err != nil {
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock("+migrationLockKey+")"); uerr != nil {
			// Drop the connection (and with it the lock) rather than
			// return it to the pool still holding the lock.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			err = errors.Join(err, fmt.Errorf("postgres: migrate: unlock: %w", uerr))
		}
	}()
	if err := sqlstore.Goose(ctx, db, goose.DialectPostgres, migrations.Postgres()); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// migrationLockKey is the advisory lock key of migrate: one per schema.
const migrationLockKey = "hashtextextended('mcpgate migrate ' || coalesce(current_schema(), ''), 0)"

// isConflict tells a unique violation.
func isConflict(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505"
}

// retryable tells a deadlock or a serialization failure.
func retryable(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && (e.Code == "40001" || e.Code == "40P01")
}
