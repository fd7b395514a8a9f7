package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// ErrNotFound is returned for an event id that does not exist.
var ErrNotFound = errors.New("event not found")

// Event is a calendar event as the tools return it. Start and End are
// RFC 3339 date-times, in the offset they were given in.
type Event struct {
	ID        string   `json:"id"`
	Title     string   `json:"title"`
	Start     string   `json:"start"`
	End       string   `json:"end"`
	Attendees []string `json:"attendees"`
	// Owner is who created the event (see OwnerHeader).
	Owner string `json:"owner"`
}

// event is an Event with its times parsed.
type event struct {
	Event
	start, end time.Time
}

// Store keeps events in SQLite.
type Store struct {
	db *sql.DB
}

const schema = `
CREATE TABLE IF NOT EXISTS events (
	id         TEXT PRIMARY KEY,
	title      TEXT NOT NULL,
	starts     TEXT NOT NULL,    -- RFC 3339, as given
	ends       TEXT NOT NULL,
	starts_us  INTEGER NOT NULL, -- Unix microseconds, for range queries
	ends_us    INTEGER NOT NULL,
	attendees  TEXT NOT NULL,    -- JSON array of e-mail addresses
	owner      TEXT NOT NULL,
	created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_start ON events (starts_us);
`

// OpenStore opens (creating if needed) the SQLite database at path; "" or
// ":memory:" is a private in-memory database.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	dsn := "file::memory:"
	if path != "" && path != ":memory:" {
		dsn = "file:" + (&url.URL{Path: path}).EscapedPath()
	}
	dsn += "?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	// One connection: an in-memory database lives in its connection, and a
	// demo server has no use for concurrent writers.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "evt_" + hex.EncodeToString(b[:])
}

// create stores e under a new id and returns it.
func (s *Store) create(ctx context.Context, e event) (Event, error) {
	e.ID = newID()
	att, err := json.Marshal(e.Attendees)
	if err != nil {
		return Event{}, err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO events
		(id, title, starts, ends, starts_us, ends_us, attendees, owner, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.Title, e.Start, e.End, e.start.UnixMicro(), e.end.UnixMicro(), string(att), e.Owner,
		time.Now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return Event{}, err
	}
	return e.Event, nil
}

// update applies fn to the event id inside one transaction.
func (s *Store) update(ctx context.Context, id string, fn func(*event) error) (Event, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Event{}, err
	}
	defer tx.Rollback() // a no-op after Commit
	e, err := scanOne(tx.QueryRowContext(ctx, selectEvents+` WHERE id = ?`, id))
	if err != nil {
		return Event{}, err
	}
	if err := fn(&e); err != nil {
		return Event{}, err
	}
	att, err := json.Marshal(e.Attendees)
	if err != nil {
		return Event{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE events SET title = ?, starts = ?, ends = ?,
		starts_us = ?, ends_us = ?, attendees = ? WHERE id = ?`,
		e.Title, e.Start, e.End, e.start.UnixMicro(), e.end.UnixMicro(), string(att), id); err != nil {
		return Event{}, err
	}
	return e.Event, tx.Commit()
}

// delete removes the event id.
func (s *Store) delete(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM events WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrNotFound
	}
	return nil
}

// between returns, ordered by start, the events that overlap [from, to);
// a zero from or to leaves that side open.
func (s *Store) between(ctx context.Context, from, to time.Time) ([]event, error) {
	q, args := selectEvents+` WHERE 1 = 1`, []any{}
	if !from.IsZero() {
		q += ` AND ends_us > ?`
		args = append(args, from.UnixMicro())
	}
	if !to.IsZero() {
		q += ` AND starts_us < ?`
		args = append(args, to.UnixMicro())
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY starts_us, ends_us, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []event
	for rows.Next() {
		e, err := scanOne(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

const selectEvents = `SELECT id, title, starts, ends, attendees, owner FROM events`

func scanOne(row interface{ Scan(...any) error }) (event, error) {
	var e event
	var att string
	if err := row.Scan(&e.ID, &e.Title, &e.Start, &e.End, &att, &e.Owner); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return event{}, ErrNotFound
		}
		return event{}, err
	}
	if err := json.Unmarshal([]byte(att), &e.Attendees); err != nil {
		return event{}, fmt.Errorf("event %s: attendees: %w", e.ID, err)
	}
	if e.Attendees == nil {
		e.Attendees = []string{}
	}
	var err error
	if e.start, err = time.Parse(time.RFC3339, e.Start); err != nil {
		return event{}, fmt.Errorf("event %s: %w", e.ID, err)
	}
	if e.end, err = time.Parse(time.RFC3339, e.End); err != nil {
		return event{}, fmt.Errorf("event %s: %w", e.ID, err)
	}
	return e, nil
}
