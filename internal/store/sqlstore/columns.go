package sqlstore

import (
	"encoding/json"
	"fmt"
	"time"
)

// Column encodings. Arguments are encoded with ts, list, raw, optional and
// secret; results scanned through tsCol, listCol, rawCol and strCol, which
// accept what either driver hands back.

// timeArg is a time argument the dialect encodes when the statement runs
// (Dialect.Time).
type timeArg time.Time

// ts encodes a time; the zero time is NULL.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return timeArg(t)
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

// putTimes are the times of a Put (an upsert): created and updated for a
// new row (zero ones stamped), and replaced, the UpdatedAt a replaced row
// gets (the caller's, or now); a replaced row keeps its CreatedAt.
func putTimes(created, updated time.Time) (_, _, replaced time.Time) {
	replaced = updated
	if replaced.IsZero() {
		replaced = time.Now()
	}
	stamp(&created, &updated)
	return created, updated, replaced
}

// touch sets *updated to the current time when an update function left it
// as it was (old).
func touch(updated *time.Time, old time.Time) {
	if updated.Equal(old) {
		*updated = time.Now()
	}
}

type tsCol struct{ t *time.Time }

func (c tsCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
	case int64: // Unix microseconds (SQLite)
		*c.t = time.UnixMicro(v).UTC()
	case time.Time: // timestamptz (PostgreSQL)
		*c.t = v.UTC()
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

// secret encodes opaque bytes for a NOT NULL column; nil is an empty blob.
func secret(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
