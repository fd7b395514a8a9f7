package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the admin connection

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/postgres"
	"github.com/mcpgate/mcpgate/internal/store/storetest"
)

// envURL names the database the tests use. `make test` starts a throwaway
// server (scripts/postgres.sh) and sets it; each store of the tests lives in
// its own new schema, dropped afterwards, so runs never see each other.
const envURL = "MCPGATE_TEST_POSTGRES_URL"

func adminDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(envURL)
	if dsn == "" {
		t.Skipf("%s is not set: skipping the PostgreSQL tests (make test starts a throwaway server: scripts/postgres.sh start; "+
			"export %s=$(scripts/postgres.sh url))", envURL, envURL)
	}
	return dsn
}

// freshSchema creates an empty schema and returns a DSN whose search_path is
// that schema; the schema is dropped when the test ends.
func freshSchema(t testing.TB) string {
	t.Helper()
	dsn := adminDSN(t)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("admin connection: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := fmt.Sprintf("mcpgate_test_%x", b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("CREATE SCHEMA (is %s right?): %v", envURL, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("DROP SCHEMA %s: %v", schema, err)
		}
	})
	return withSearchPath(t, dsn, schema)
}

func withSearchPath(t testing.TB, dsn, schema string) string {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("%s: %v", envURL, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	adminDSN(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, freshSchema(t)) })
}

// BenchmarkStore runs the shared benchmarks (over loopback TCP).
func BenchmarkStore(b *testing.B) {
	s := open(b, freshSchema(b))
	defer s.Close()
	storetest.Bench(b, s)
}

// Reopening keeps the data, and migrating an up-to-date schema is a no-op.
func TestReopenAndMigrate(t *testing.T) {
	ctx := t.Context()
	dsn := freshSchema(t)
	s := open(t, dsn)
	if err := s.CreateClient(ctx, store.Client{ID: "c", Kind: store.ClientStatic}); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t, dsn)
	defer s.Close()
	if _, err := s.GetClient(ctx, "c"); err != nil {
		t.Fatalf("GetClient after reopening: %v", err)
	}
}

// Replicas starting together on an empty schema: the migration lock lets
// one migrate and the others find it done.
func TestConcurrentOpen(t *testing.T) {
	dsn := freshSchema(t)
	const n = 4
	var wg sync.WaitGroup
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(t.Context(), dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		if err := stores[i].CreateUser(t.Context(), store.User{ID: fmt.Sprint("u", i)}); err != nil {
			t.Errorf("CreateUser through store %d: %v", i, err)
		}
		stores[i].Close()
	}
}

func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://u:secret@[bad",           // unparsable
		"postgres://u:secret@127.0.0.1:1/db", // nobody listening
	} {
		s, err := postgres.Open(ctx, dsn)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q): no error", dsn)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) error shows the password: %v", dsn, err)
		}
	}
}
