package sqlite_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
	"github.com/mcpgate/mcpgate/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "mcpgate.db"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// BenchmarkStore runs the shared benchmarks on a database file, as mcpgate
// runs by default.
func BenchmarkStore(b *testing.B) {
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "mcpgate.db"))
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	defer s.Close()
	storetest.Bench(b, s)
}

func TestConformanceInMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short: the file-backed run covers the same code")
	}
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(t.Context(), ":memory:")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

// Reopening keeps the data, and migrating an up-to-date database is a
// no-op; Open creates the parent directories.
func TestReopenAndMigrate(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "a", "b", "mcpgate.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.CreateClient(ctx, store.Client{ID: "c", Kind: store.ClientStatic}); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open again: %v", err)
	}
	defer s.Close()
	if _, err := s.GetClient(ctx, "c"); err != nil {
		t.Fatalf("GetClient after reopening: %v", err)
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("parent directory: %v, mode %v, want 0700", err, fi.Mode().Perm())
	}
}

// Two stores on one file (as two processes would have) still update
// atomically: BEGIN IMMEDIATE plus the busy timeout serialise them.
func TestTwoHandlesOneFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	var stores [2]*sqlite.Store
	for i := range stores {
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer s.Close()
		stores[i] = s
	}
	if err := stores[0].CreateUser(ctx, store.User{ID: "u"}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range 2 * n {
		wg.Go(func() {
			errs <- stores[i%2].UpdateUser(ctx, "u", func(u store.User) (store.User, error) {
				u.Roles = append(u.Roles, "r")
				return u, nil
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
	}
	u, err := stores[1].GetUser(ctx, "u")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if len(u.Roles) != 2*n {
		t.Errorf("len(Roles) = %d after %d updates through two handles, want %d", len(u.Roles), 2*n, 2*n)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, path := range []string{"", "a?b"} {
		if s, err := sqlite.Open(t.Context(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q): no error", path)
		}
	}
	// A parent that is a file.
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.Open(t.Context(), filepath.Join(f, "db")); err == nil {
		s.Close()
		t.Error("Open under a file: no error")
	} else if errors.Is(err, store.ErrNotFound) {
		t.Errorf("Open under a file: %v", err)
	}
}
