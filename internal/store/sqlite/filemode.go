package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// fileMode is the mode of the database and its -wal, -shm and -journal
// files: they hold password hashes, refresh-token hashes and sealed keys,
// which nobody but the gateway's user should read.
const fileMode = 0o600

// restrictFiles creates the database file with fileMode when it does not
// exist yet (SQLite creates its -wal and -shm files with the mode of the
// database file), and takes group and other access away from the files an
// older version created world-readable.
func restrictFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, fi.Mode().Perm()&^0o077); err != nil {
				return fmt.Errorf("sqlite: restrict %s: %w", p, err)
			}
		}
	}
	return nil
}
