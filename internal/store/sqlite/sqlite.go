// Package sqlite is mcpgate's embedded storage backend: store.Store on one
// SQLite file, through modernc.org/sqlite (pure Go, no cgo).
//
// The database runs in WAL mode with a busy timeout and foreign keys on.
// Writes go through a single connection whose transactions start with
// BEGIN IMMEDIATE, so an Update's read-modify-write holds the write lock
// from its first read and no change is lost, within this process and
// against other processes opening the same file; reads use a separate pool
// and never wait for writers. ":memory:" opens a private in-memory database
// (one connection for everything), for tests.
//
// Open applies the schema migrations (internal/store/migrations/sqlite,
// with goose); Migrate does the same on its own. Times are kept as Unix
// microseconds (UTC), lists as JSON text. The behaviours store.go leaves
// open are pinned by internal/store/storetest, which this backend passes.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
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

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/migrations"
)

// busyTimeoutMS is how long a statement waits for a lock held by another
// connection (another process, or a reader during a checkpoint).
const busyTimeoutMS = 10_000

// Store is the SQLite store.Store. Its methods are safe for concurrent use.
type Store struct {
	w *sql.DB // the writer: one connection, BEGIN IMMEDIATE transactions
	r *sql.DB // readers; w itself for an in-memory database
}

var _ store.Store = (*Store)(nil)

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
	s := &Store{w: w, r: w}
	if !memory {
		r, err := sql.Open("sqlite", path+"?"+common+"&_pragma=query_only(1)")
		if err != nil {
			_ = w.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		n := max(4, runtime.GOMAXPROCS(0))
		r.SetMaxOpenConns(n)
		r.SetMaxIdleConns(n)
		s.r = r
	}
	if err := s.Migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Migrate applies the migrations the database does not have yet; a no-op
// when it is up to date. Open runs it.
func (s *Store) Migrate(ctx context.Context) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w, migrations.SQLite(),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	var err error
	if s.r != s.w {
		err = s.r.Close()
	}
	return errors.Join(err, s.w.Close())
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

// tx runs fn in a write transaction (BEGIN IMMEDIATE), committing when fn
// returns nil.
func (s *Store) tx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

func notFound(what string) error        { return fmt.Errorf("sqlite: %s: %w", what, store.ErrNotFound) }
func wrap(what string, err error) error { return fmt.Errorf("sqlite: %s: %w", what, err) }

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

// exec runs a statement that inserts or changes keys: a conflict is
// ErrAlreadyExists.
func exec(ctx context.Context, q querier, what, query string, args ...any) (sql.Result, error) {
	res, err := q.ExecContext(ctx, query, args...)
	if isConflict(err) {
		return nil, wrap(what, store.ErrAlreadyExists)
	}
	if err != nil {
		return nil, wrap(what, err)
	}
	return res, nil
}

// execOne is exec for a statement that must touch one row: none is
// ErrNotFound.
func execOne(ctx context.Context, q querier, what, query string, args ...any) error {
	res, err := exec(ctx, q, what, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(what, err)
	}
	if n == 0 {
		return notFound(what)
	}
	return nil
}

func getOne[T any](ctx context.Context, q querier, scan func(scanner) (T, error), what, query string, args ...any) (T, error) {
	v, err := scan(q.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		var zero T
		return zero, notFound(what)
	}
	if err != nil {
		var zero T
		return zero, wrap(what, err)
	}
	return v, nil
}

func getAll[T any](ctx context.Context, q querier, scan func(scanner) (T, error), what, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrap(what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, wrap(what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(what, err)
	}
	return out, nil
}

// Column encodings.

// ts encodes a time as Unix microseconds; the zero time is NULL.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// norm is a time as the database gives it back: UTC, microseconds.
func norm(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

// now normalises a caller's "now" (zero means the clock).
func now(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return norm(t)
}

func expired(expiresAt, now time.Time) bool {
	return !expiresAt.IsZero() && !now.Before(expiresAt)
}

// stamp fills zero creation and update times.
func stamp(created, updated *time.Time) {
	if created.IsZero() {
		*created = time.Now()
	}
	if updated.IsZero() {
		*updated = *created
	}
}

type tsCol struct{ t *time.Time }

func (c tsCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("time column holds %T", v)
	}
	return nil
}

// list encodes a list as a JSON array; nil is [].
func list(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, err := json.Marshal(l)
	if err != nil { // cannot happen for []string
		panic(err)
	}
	return string(b)
}

type listCol struct{ l *[]string }

func (c listCol) Scan(v any) error {
	var b []byte
	switch v := v.(type) {
	case nil:
		*c.l = []string{}
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("list column holds %T", v)
	}
	l := []string{}
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("list column: %w", err)
	}
	if l == nil { // "null"
		l = []string{}
	}
	*c.l = l
	return nil
}

// raw encodes a JSON document as text; empty is NULL.
func raw(m json.RawMessage) any {
	if len(m) == 0 {
		return nil
	}
	return string(m)
}

type rawCol struct{ m *json.RawMessage }

func (c rawCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.m = nil
	case string:
		*c.m = json.RawMessage(v)
	case []byte:
		*c.m = append(json.RawMessage(nil), v...)
	default:
		return fmt.Errorf("JSON column holds %T", v)
	}
	return nil
}

// optional encodes "" as NULL (for the unique username).
func optional(s string) any {
	if s == "" {
		return nil
	}
	return s
}

type strCol struct{ s *string }

func (c strCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.s = ""
	case string:
		*c.s = v
	case []byte:
		*c.s = string(v)
	default:
		return fmt.Errorf("text column holds %T", v)
	}
	return nil
}

// Statements built from a column list: cols[0] is the key.
func insertSQL(table string, cols []string) string {
	return "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
}

func updateSQL(table string, cols []string) string {
	return "UPDATE " + table + " SET (" + strings.Join(cols[1:], ", ") + ") = (" +
		strings.TrimSuffix(strings.Repeat("?, ", len(cols)-1), ", ") + ") WHERE " + cols[0] + " = ?"
}

func selectSQL(table string, cols []string) string {
	return "SELECT " + strings.Join(cols, ", ") + " FROM " + table
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

var clientCols = []string{"id", "secret_hash", "secret_expires_at", "name", "kind",
	"redirect_uris", "grant_types", "response_types", "token_endpoint_auth_method", "scope",
	"jwks", "jwks_uri", "client_group", "metadata", "created_at", "updated_at"}

var (
	selectClient = selectSQL("clients", clientCols)
	insertClient = insertSQL("clients", clientCols)
	updateClient = updateSQL("clients", clientCols)
)

func clientArgs(c store.Client) []any {
	return []any{c.ID, c.SecretHash, ts(c.SecretExpiresAt), c.Name, c.Kind,
		list(c.RedirectURIs), list(c.GrantTypes), list(c.ResponseTypes), c.TokenEndpointAuthMethod, c.Scope,
		raw(c.JWKS), c.JWKSURI, c.Group, raw(c.Metadata), ts(c.CreatedAt), ts(c.UpdatedAt)}
}

func scanClient(sc scanner) (store.Client, error) {
	var c store.Client
	err := sc.Scan(&c.ID, &c.SecretHash, tsCol{&c.SecretExpiresAt}, &c.Name, &c.Kind,
		listCol{&c.RedirectURIs}, listCol{&c.GrantTypes}, listCol{&c.ResponseTypes}, &c.TokenEndpointAuthMethod, &c.Scope,
		rawCol{&c.JWKS}, &c.JWKSURI, &c.Group, rawCol{&c.Metadata}, tsCol{&c.CreatedAt}, tsCol{&c.UpdatedAt})
	return c, err
}

func clientWhat(id string) string { return fmt.Sprintf("client %q", id) }

// CreateClient stores a new client.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	stamp(&c.CreatedAt, &c.UpdatedAt)
	_, err := exec(ctx, s.w, clientWhat(c.ID), insertClient, clientArgs(c)...)
	return err
}

// GetClient returns the client with the given ID.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	return getOne(ctx, s.r, scanClient, clientWhat(id), selectClient+" WHERE id = ?", id)
}

// UpdateClient changes a client atomically.
func (s *Store) UpdateClient(ctx context.Context, id string, update func(store.Client) (store.Client, error)) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		old, err := getOne(ctx, tx, scanClient, clientWhat(id), selectClient+" WHERE id = ?", id)
		if err != nil {
			return err
		}
		oldUpdated := old.UpdatedAt
		c, err := update(old)
		if err != nil {
			return err
		}
		if c.ID != id {
			return fmt.Errorf("sqlite: update of client %q changed its ID to %q", id, c.ID)
		}
		if c.UpdatedAt.Equal(oldUpdated) {
			c.UpdatedAt = time.Now()
		}
		_, err = exec(ctx, tx, clientWhat(id), updateClient, append(clientArgs(c)[1:], id)...)
		return err
	})
}

// DeleteClient deletes a client (only that row).
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return execOne(ctx, s.w, clientWhat(id), "DELETE FROM clients WHERE id = ?", id)
}

// ListClients returns every client, by ID.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	return getAll(ctx, s.r, scanClient, "list clients", selectClient+" ORDER BY id")
}

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

var userCols = []string{"id", "username", "email", "password_hash", "tenant",
	"user_groups", "roles", "permissions", "disabled", "source", "upstream_token", "created_at", "updated_at"}

var (
	selectUser = selectSQL("users", userCols)
	insertUser = insertSQL("users", userCols)
	updateUser = updateSQL("users", userCols)
)

func userArgs(u store.User) []any {
	return []any{u.ID, optional(u.Username), u.Email, u.PasswordHash, u.Tenant,
		list(u.Groups), list(u.Roles), list(u.Permissions), u.Disabled, u.Source, u.UpstreamToken, ts(u.CreatedAt), ts(u.UpdatedAt)}
}

func scanUser(sc scanner) (store.User, error) {
	var u store.User
	err := sc.Scan(&u.ID, strCol{&u.Username}, &u.Email, &u.PasswordHash, &u.Tenant,
		listCol{&u.Groups}, listCol{&u.Roles}, listCol{&u.Permissions}, &u.Disabled, &u.Source, &u.UpstreamToken, tsCol{&u.CreatedAt}, tsCol{&u.UpdatedAt})
	return u, err
}

func userWhat(id string) string { return fmt.Sprintf("user %q", id) }

// CreateUser stores a new user; its ID and (non-empty) username must be
// free.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	stamp(&u.CreatedAt, &u.UpdatedAt)
	_, err := exec(ctx, s.w, userWhat(u.ID), insertUser, userArgs(u)...)
	return err
}

// GetUser returns the user with the given ID.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	return getOne(ctx, s.r, scanUser, userWhat(id), selectUser+" WHERE id = ?", id)
}

// GetUserByUsername returns the user with the given username (exact
// match); "" matches nobody.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (store.User, error) {
	return getOne(ctx, s.r, scanUser, fmt.Sprintf("username %q", username), selectUser+" WHERE username = ?", username)
}

// UpdateUser changes a user atomically.
func (s *Store) UpdateUser(ctx context.Context, id string, update func(store.User) (store.User, error)) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		old, err := getOne(ctx, tx, scanUser, userWhat(id), selectUser+" WHERE id = ?", id)
		if err != nil {
			return err
		}
		oldUpdated := old.UpdatedAt
		u, err := update(old)
		if err != nil {
			return err
		}
		if u.ID != id {
			return fmt.Errorf("sqlite: update of user %q changed its ID to %q", id, u.ID)
		}
		if u.UpdatedAt.Equal(oldUpdated) {
			u.UpdatedAt = time.Now()
		}
		_, err = exec(ctx, tx, userWhat(id), updateUser, append(userArgs(u)[1:], id)...)
		return err
	})
}

// DeleteUser deletes a user (only that row).
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return execOne(ctx, s.w, userWhat(id), "DELETE FROM users WHERE id = ?", id)
}

// ListUsers returns every user, by ID.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	return getAll(ctx, s.r, scanUser, "list users", selectUser+" ORDER BY id")
}

// ---------------------------------------------------------------------------
// Authorization codes
// ---------------------------------------------------------------------------

var authCodeCols = []string{"code_hash", "client_id", "user_id", "redirect_uri", "code_challenge",
	"resource", "scope", "grant_id", "created_at", "expires_at", "used_at"}

var (
	selectAuthCode = selectSQL("auth_codes", authCodeCols)
	insertAuthCode = insertSQL("auth_codes", authCodeCols)
)

func scanAuthCode(sc scanner) (store.AuthCode, error) {
	var c store.AuthCode
	err := sc.Scan(&c.CodeHash, &c.ClientID, &c.UserID, &c.RedirectURI, &c.CodeChallenge,
		&c.Resource, &c.Scope, &c.GrantID, tsCol{&c.CreatedAt}, tsCol{&c.ExpiresAt}, tsCol{&c.UsedAt})
	return c, err
}

const authCodeWhat = "authorization code"

// CreateAuthCode stores a new authorization code.
func (s *Store) CreateAuthCode(ctx context.Context, c store.AuthCode) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	_, err := exec(ctx, s.w, authCodeWhat, insertAuthCode,
		c.CodeHash, c.ClientID, c.UserID, c.RedirectURI, c.CodeChallenge,
		c.Resource, c.Scope, c.GrantID, ts(c.CreatedAt), ts(c.ExpiresAt), ts(c.UsedAt))
	return err
}

// ConsumeAuthCode marks a code used and returns it; see store.Store.
func (s *Store) ConsumeAuthCode(ctx context.Context, codeHash string, at time.Time) (store.AuthCode, error) {
	at = now(at)
	var c store.AuthCode
	var result error
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		result = nil
		c, err = getOne(ctx, tx, scanAuthCode, authCodeWhat, selectAuthCode+" WHERE code_hash = ?", codeHash)
		if err != nil {
			return err
		}
		switch {
		case !c.UsedAt.IsZero():
			result = wrap(authCodeWhat, store.ErrAlreadyUsed)
			return nil
		case expired(c.ExpiresAt, at):
			result = wrap(authCodeWhat, store.ErrExpired)
			return nil
		}
		if _, err := exec(ctx, tx, authCodeWhat, "UPDATE auth_codes SET used_at = ? WHERE code_hash = ?", ts(at), codeHash); err != nil {
			return err
		}
		c.UsedAt = at
		return nil
	})
	if err != nil {
		return store.AuthCode{}, err
	}
	return c, result
}

// ---------------------------------------------------------------------------
// Refresh tokens
// ---------------------------------------------------------------------------

var refreshCols = []string{"token_hash", "family_id", "client_id", "user_id", "resource", "scope",
	"created_at", "expires_at", "rotated_at", "revoked_at"}

var (
	selectRefresh = selectSQL("refresh_tokens", refreshCols)
	insertRefresh = insertSQL("refresh_tokens", refreshCols)
)

func refreshArgs(t store.RefreshToken) []any {
	return []any{t.TokenHash, t.FamilyID, t.ClientID, t.UserID, t.Resource, t.Scope,
		ts(t.CreatedAt), ts(t.ExpiresAt), ts(t.RotatedAt), ts(t.RevokedAt)}
}

func scanRefresh(sc scanner) (store.RefreshToken, error) {
	var t store.RefreshToken
	err := sc.Scan(&t.TokenHash, &t.FamilyID, &t.ClientID, &t.UserID, &t.Resource, &t.Scope,
		tsCol{&t.CreatedAt}, tsCol{&t.ExpiresAt}, tsCol{&t.RotatedAt}, tsCol{&t.RevokedAt})
	return t, err
}

const refreshWhat = "refresh token"

// CreateRefreshToken stores a new refresh token (the first of a family).
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if t.FamilyID == "" {
		return errors.New("sqlite: refresh token without a family")
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	_, err := exec(ctx, s.w, refreshWhat, insertRefresh, refreshArgs(t)...)
	return err
}

// GetRefreshToken returns a refresh token whatever its state.
func (s *Store) GetRefreshToken(ctx context.Context, tokenHash string) (store.RefreshToken, error) {
	return getOne(ctx, s.r, scanRefresh, refreshWhat, selectRefresh+" WHERE token_hash = ?", tokenHash)
}

// RotateRefreshToken replaces oldHash by next; see store.Store. It returns
// the record of oldHash as it is after the call.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next store.RefreshToken, at time.Time) (store.RefreshToken, error) {
	at = now(at)
	var old store.RefreshToken
	var result error
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		result = nil
		old, err = getOne(ctx, tx, scanRefresh, refreshWhat, selectRefresh+" WHERE token_hash = ?", oldHash)
		if err != nil {
			return err
		}
		switch {
		case !old.RevokedAt.IsZero():
			result = wrap(refreshWhat, store.ErrRevoked)
			return nil
		case !old.RotatedAt.IsZero():
			// Reuse: the whole family goes (committed, with the error).
			if _, err := exec(ctx, tx, refreshWhat,
				"UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
				ts(at), old.FamilyID); err != nil {
				return err
			}
			old.RevokedAt = at
			result = wrap(refreshWhat, store.ErrAlreadyUsed)
			return nil
		case expired(old.ExpiresAt, at):
			result = wrap(refreshWhat, store.ErrExpired)
			return nil
		}
		n := next
		if n.FamilyID == "" {
			n.FamilyID = old.FamilyID
		} else if n.FamilyID != old.FamilyID {
			return fmt.Errorf("sqlite: next refresh token is in family %q, the rotated one in %q", n.FamilyID, old.FamilyID)
		}
		if n.CreatedAt.IsZero() {
			n.CreatedAt = at
		}
		if _, err := exec(ctx, tx, refreshWhat, "UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ?", ts(at), oldHash); err != nil {
			return err
		}
		if _, err := exec(ctx, tx, "next "+refreshWhat, insertRefresh, refreshArgs(n)...); err != nil {
			return err
		}
		old.RotatedAt = at
		return nil
	})
	if err != nil {
		return store.RefreshToken{}, err
	}
	return old, result
}

// RevokeRefreshFamily revokes every token of a family not revoked yet.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string, at time.Time) error {
	_, err := exec(ctx, s.w, "revoke refresh family",
		"UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL", ts(now(at)), familyID)
	return err
}

// RevokeRefreshTokens revokes a user's tokens for a client ("" = every
// client) not revoked yet, and counts them.
func (s *Store) RevokeRefreshTokens(ctx context.Context, userID, clientID string, at time.Time) (int, error) {
	q := "UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL"
	args := []any{ts(now(at)), userID}
	if clientID != "" {
		q += " AND client_id = ?"
		args = append(args, clientID)
	}
	res, err := exec(ctx, s.w, "revoke refresh tokens", q, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap("revoke refresh tokens", err)
	}
	return int(n), nil
}

// ---------------------------------------------------------------------------
// Consents
// ---------------------------------------------------------------------------

const selectConsent = "SELECT user_id, client_id, scopes, resources, created_at, updated_at FROM consents"

func scanConsent(sc scanner) (store.Consent, error) {
	var c store.Consent
	err := sc.Scan(&c.UserID, &c.ClientID, listCol{&c.Scopes}, listCol{&c.Resources}, tsCol{&c.CreatedAt}, tsCol{&c.UpdatedAt})
	return c, err
}

func consentWhat(userID, clientID string) string {
	return fmt.Sprintf("consent of user %q for client %q", userID, clientID)
}

// GetConsent returns what a user allowed a client.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (store.Consent, error) {
	return getOne(ctx, s.r, scanConsent, consentWhat(userID, clientID),
		selectConsent+" WHERE user_id = ? AND client_id = ?", userID, clientID)
}

// PutConsent creates or replaces a consent; a replaced one keeps its
// CreatedAt.
func (s *Store) PutConsent(ctx context.Context, c store.Consent) error {
	clock := time.Now()
	created, updated := c.CreatedAt, c.UpdatedAt
	stamp(&created, &updated)
	replaced := c.UpdatedAt
	if replaced.IsZero() {
		replaced = clock
	}
	_, err := exec(ctx, s.w, consentWhat(c.UserID, c.ClientID),
		`INSERT INTO consents (user_id, client_id, scopes, resources, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		 ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, resources = excluded.resources, updated_at = ?`,
		c.UserID, c.ClientID, list(c.Scopes), list(c.Resources), ts(created), ts(updated), ts(replaced))
	return err
}

// DeleteConsent forgets a consent.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	return execOne(ctx, s.w, consentWhat(userID, clientID),
		"DELETE FROM consents WHERE user_id = ? AND client_id = ?", userID, clientID)
}

// ListConsents returns a user's consents, by client ID.
func (s *Store) ListConsents(ctx context.Context, userID string) ([]store.Consent, error) {
	return getAll(ctx, s.r, scanConsent, "list consents", selectConsent+" WHERE user_id = ? ORDER BY client_id", userID)
}

// ---------------------------------------------------------------------------
// Signing keys
// ---------------------------------------------------------------------------

var keyCols = []string{"id", "algorithm", "private", "created_at", "active_from", "retired_at", "expires_at"}

var (
	selectKey = selectSQL("signing_keys", keyCols)
	insertKey = insertSQL("signing_keys", keyCols)
	updateKey = updateSQL("signing_keys", keyCols)
)

func keyArgs(k store.SigningKey) []any {
	return []any{k.ID, k.Algorithm, k.Private, ts(k.CreatedAt), ts(k.ActiveFrom), ts(k.RetiredAt), ts(k.ExpiresAt)}
}

func scanKey(sc scanner) (store.SigningKey, error) {
	var k store.SigningKey
	err := sc.Scan(&k.ID, &k.Algorithm, &k.Private, tsCol{&k.CreatedAt}, tsCol{&k.ActiveFrom}, tsCol{&k.RetiredAt}, tsCol{&k.ExpiresAt})
	return k, err
}

func keyWhat(id string) string { return fmt.Sprintf("signing key %q", id) }

// CreateSigningKey stores a new signing key.
func (s *Store) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now()
	}
	_, err := exec(ctx, s.w, keyWhat(k.ID), insertKey, keyArgs(k)...)
	return err
}

// ListSigningKeys returns every signing key, by ActiveFrom (zero first),
// then ID.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	return getAll(ctx, s.r, scanKey, "list signing keys", selectKey+" ORDER BY active_from NULLS FIRST, id")
}

// UpdateSigningKey changes a signing key atomically.
func (s *Store) UpdateSigningKey(ctx context.Context, id string, update func(store.SigningKey) (store.SigningKey, error)) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		old, err := getOne(ctx, tx, scanKey, keyWhat(id), selectKey+" WHERE id = ?", id)
		if err != nil {
			return err
		}
		k, err := update(old)
		if err != nil {
			return err
		}
		if k.ID != id {
			return fmt.Errorf("sqlite: update of signing key %q changed its ID to %q", id, k.ID)
		}
		_, err = exec(ctx, tx, keyWhat(id), updateKey, append(keyArgs(k)[1:], id)...)
		return err
	})
}

// DeleteSigningKey deletes a signing key.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	return execOne(ctx, s.w, keyWhat(id), "DELETE FROM signing_keys WHERE id = ?", id)
}

// ---------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------

// DeleteExpired removes the authorization codes and refresh tokens whose
// ExpiresAt is at or before now.
func (s *Store) DeleteExpired(ctx context.Context, at time.Time) (int, error) {
	cut := ts(now(at))
	total := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		total = 0
		for _, table := range []string{"auth_codes", "refresh_tokens"} {
			res, err := exec(ctx, tx, "delete expired", "DELETE FROM "+table+" WHERE expires_at <= ?", cut)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return wrap("delete expired", err)
			}
			total += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}
