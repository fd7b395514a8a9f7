// Package migrations holds the SQL schema of the storage backends, one
// folder per dialect (sqlite/, postgres/), embedded in the binary. Files are
// goose migrations (github.com/pressly/goose/v3): NNNNN_name.sql with
// "-- +goose Up" and "-- +goose Down" sections, applied in order by the
// backend's Migrate (which Open runs). A schema change adds a new file to
// both folders; released files are never edited.
//
// Conventions shared by both dialects: lists (redirect URIs, groups,
// scopes…) are JSON arrays in text columns; a zero time.Time is NULL.
// SQLite keeps times as INTEGER Unix microseconds (UTC), PostgreSQL as
// timestamptz, so both round-trip to the microsecond.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// SQLite returns the SQLite migrations (the root holds the .sql files).
func SQLite() fs.FS { return sub("sqlite") }

// Postgres returns the PostgreSQL migrations (the root holds the .sql files).
func Postgres() fs.FS { return sub("postgres") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil { // only for an invalid name, which dir is not
		panic(err)
	}
	return f
}
