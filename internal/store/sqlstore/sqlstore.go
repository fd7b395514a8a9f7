// Package sqlstore is mcpgate's one SQL implementation of store.Store:
// every query and every transaction's logic is written here once, and the
// little that differs between the databases it runs on is a Dialect value
// (the way Dex serves several databases from one storage/sql). The
// backends, store/sqlite and store/postgres, are thin: they open the
// driver with its settings, define their Dialect, and keep their schema
// migrations (internal/store/migrations/<dialect>).
//
// What a Dialect decides, and nothing else:
//   - placeholders: queries here are written with ?, rebound to $1, $2… for
//     PostgreSQL;
//   - row locking: the SELECT that starts a read-modify-write ends in
//     Dialect.LockRow (" FOR UPDATE" on PostgreSQL, so concurrent
//     transactions queue on the row; nothing on SQLite, whose BEGIN IMMEDIATE
//     already holds the database's write lock from the first read);
//   - how a time is stored (SQLite: INTEGER Unix microseconds; PostgreSQL:
//     timestamptz), written ts(t) in an argument list and encoded when the
//     statement runs;
//   - which driver errors are a unique violation (store.ErrAlreadyExists)
//     and which aborted transactions may run again (PostgreSQL's deadlocks
//     and serialization failures);
//   - how the schema is migrated.
//
// Everything else is the same SQL on both: upserts are INSERT … ON
// CONFLICT … DO UPDATE (SQLite ≥ 3.24 and PostgreSQL ≥ 9.5 share the
// syntax, excluded.* included), lists are JSON text, JSON documents text,
// secrets bytes (BLOB / bytea), ORDER BY … NULLS FIRST works on both. Where
// a function differs by name, write the portable form (CASE WHEN a > b THEN
// a ELSE b END, not SQLite's max(a, b) or PostgreSQL's GREATEST). A
// difference that cannot be written once goes into Dialect, never into an
// `if` on a dialect's name.
//
// A new table: its migration in both internal/store/migrations folders, its
// methods once, here, in a file of their own (<topic>.go), its cases in
// storetest/<topic>.go. The methods write ? placeholders; read with
// getOne/getAll(ctx, s.read(), …); write with exec/execOne/count(ctx,
// s.write(), …) (a unique violation comes back as store.ErrAlreadyExists);
// read-modify-write inside s.tx(ctx, func(tx db) error {…}), the row read
// with a SELECT ending in s.d.LockRow; encode times with ts (scan tsCol),
// lists with list (listCol), opaque bytes with secret; build their own
// errors with s.d.errorf so they name the dialect.
//
// Reads go through a reader pool and writes through the writer (for SQLite
// one connection whose transactions begin IMMEDIATE; for PostgreSQL both
// are the same pool). The behaviours store.go leaves open are pinned by
// internal/store/storetest, which both dialects pass.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/mcpgate/mcpgate/internal/store"
)

// Dialect is what differs between the databases the store runs on. The
// backends define one each, next to the driver it describes. Time,
// IsConflict and Migrate are required.
type Dialect struct {
	// Name prefixes every error ("sqlite: client \"x\": not found").
	Name string
	// Numbered: the driver takes $1, $2… instead of ?.
	Numbered bool
	// LockRow ends the SELECT that starts a read-modify-write (every
	// Update, ConsumeAuthCode, RotateRefreshToken): " FOR UPDATE" where two
	// transactions could otherwise read the same row at once; "" where the
	// transaction already holds the database's write lock.
	LockRow string
	// Time encodes a non-zero time for a time column (the zero time is
	// NULL on every dialect). Columns come back as int64 Unix microseconds
	// or time.Time; both read back in UTC.
	Time func(time.Time) any
	// IsConflict tells a unique or primary-key violation.
	IsConflict func(error) bool
	// Retryable tells a transaction the database aborted that may run again
	// from the start (deadlock, serialization failure); nil: none is. A
	// retried transaction runs its update function again, which is why
	// store.Store asks for pure ones.
	Retryable func(error) bool
	// Migrate brings the schema up to date through db (the writer).
	Migrate func(ctx context.Context, db *sql.DB) error
}

// maxAttempts bounds the runs of a transaction the database keeps
// aborting (Dialect.Retryable).
const maxAttempts = 8

// Store is store.Store on a SQL database. Its methods are safe for
// concurrent use.
type Store struct {
	d Dialect
	w *sql.DB // the writer: every write and every transaction
	r *sql.DB // readers; w itself where one pool does both
}

var _ store.Store = (*Store)(nil)

// New returns the store on the writer w and the reader pool r (nil: w
// reads too). It does not migrate: the backends' Open calls Migrate. The
// store owns both pools from here on (Close closes them).
func New(d Dialect, w, r *sql.DB) *Store {
	if r == nil {
		r = w
	}
	return &Store{d: d, w: w, r: r}
}

// Migrate applies the migrations the database does not have yet; a no-op
// when it is up to date.
func (s *Store) Migrate(ctx context.Context) error { return s.d.Migrate(ctx, s.w) }

// Close closes the database.
func (s *Store) Close() error {
	var err error
	if s.r != s.w {
		err = s.r.Close()
	}
	return errors.Join(err, s.w.Close())
}

// Goose applies the goose migrations in fsys (the root holds the .sql
// files) to db: the body of every Dialect's Migrate.
func Goose(ctx context.Context, db *sql.DB, dialect goose.Dialect, fsys fs.FS) error {
	p, err := goose.NewProvider(dialect, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// ---------------------------------------------------------------------------
// Plumbing
// ---------------------------------------------------------------------------

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type scanner interface{ Scan(dest ...any) error }

// db is where a statement runs (the reader pool, the writer or a
// transaction), with the dialect that rewrites it.
type db struct {
	q querier
	d *Dialect
}

func (s *Store) read() db  { return db{s.r, &s.d} }
func (s *Store) write() db { return db{s.w, &s.d} }

// tx runs fn in a write transaction, committing when fn returns nil, and
// runs it again (up to maxAttempts, after a short random pause) when the
// database aborted it and the dialect says it may.
func (s *Store) tx(ctx context.Context, fn func(tx db) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tx1(ctx, fn)
		if err == nil || attempt == maxAttempts || s.d.Retryable == nil || !s.d.Retryable(err) {
			return err
		}
		backoff := time.Duration(attempt) * time.Duration(1+rand.IntN(10)) * time.Millisecond
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
	}
}

func (s *Store) tx1(ctx context.Context, fn func(tx db) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.d.errorf("begin: %w", err)
	}
	if err := fn(db{tx, &s.d}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.d.errorf("commit: %w", err)
	}
	return nil
}

func (d *Dialect) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: "+format, append([]any{d.Name}, args...)...)
}

func (d *Dialect) notFound(what string) error        { return d.wrap(what, store.ErrNotFound) }
func (d *Dialect) wrap(what string, err error) error { return d.errorf("%s: %w", what, err) }

// rebind rewrites query's ? placeholders for the dialect ($1, $2… when
// Numbered); a ? inside a quoted string or identifier stays.
func (d *Dialect) rebind(query string) string {
	if !d.Numbered || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// encode turns the arguments written ts(t) into the dialect's time
// encoding, in place (args is the caller's fresh variadic slice).
func (d *Dialect) encode(args []any) []any {
	for i, a := range args {
		if t, ok := a.(timeArg); ok {
			args[i] = d.Time(time.Time(t))
		}
	}
	return args
}

// exec runs a statement that inserts or changes keys: a conflict is
// ErrAlreadyExists.
func exec(ctx context.Context, q db, what, query string, args ...any) (sql.Result, error) {
	res, err := q.q.ExecContext(ctx, q.d.rebind(query), q.d.encode(args)...)
	if err != nil && q.d.IsConflict(err) {
		return nil, q.d.wrap(what, store.ErrAlreadyExists)
	}
	if err != nil {
		return nil, q.d.wrap(what, err)
	}
	return res, nil
}

// count is exec returning how many rows the statement touched.
func count(ctx context.Context, q db, what, query string, args ...any) (int, error) {
	res, err := exec(ctx, q, what, query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, q.d.wrap(what, err)
	}
	return int(n), nil
}

// execOne is exec for a statement that must touch one row: none is
// ErrNotFound.
func execOne(ctx context.Context, q db, what, query string, args ...any) error {
	n, err := count(ctx, q, what, query, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return q.d.notFound(what)
	}
	return nil
}

func getOne[T any](ctx context.Context, q db, scan func(scanner) (T, error), what, query string, args ...any) (T, error) {
	v, err := scan(q.q.QueryRowContext(ctx, q.d.rebind(query), q.d.encode(args)...))
	if errors.Is(err, sql.ErrNoRows) {
		var zero T
		return zero, q.d.notFound(what)
	}
	if err != nil {
		var zero T
		return zero, q.d.wrap(what, err)
	}
	return v, nil
}

func getAll[T any](ctx context.Context, q db, scan func(scanner) (T, error), what, query string, args ...any) ([]T, error) {
	rows, err := q.q.QueryContext(ctx, q.d.rebind(query), q.d.encode(args)...)
	if err != nil {
		return nil, q.d.wrap(what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, q.d.wrap(what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, q.d.wrap(what, err)
	}
	return out, nil
}

// Statements built from a column list: cols[0] is the key.
func insertSQL(table string, cols []string) string {
	return "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" + marks(len(cols)) + ")"
}

func updateSQL(table string, cols []string) string {
	return "UPDATE " + table + " SET (" + strings.Join(cols[1:], ", ") + ") = (" + marks(len(cols)-1) +
		") WHERE " + cols[0] + " = ?"
}

func selectSQL(table string, cols []string) string {
	return "SELECT " + strings.Join(cols, ", ") + " FROM " + table
}

// marks is n placeholders, "?, ?, …".
func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }
