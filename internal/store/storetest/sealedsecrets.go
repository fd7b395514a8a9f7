package storetest

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// ---------------------------------------------------------------------------
// Sealed secrets
// ---------------------------------------------------------------------------

func testSealedSecrets(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.GetSealedSecret(ctx, "session"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSealedSecret on an empty store: %v, want ErrNotFound", err)
	}
	value := []byte{0x01, 0x00, 0xff, 0x10} // binary, with a NUL
	x := store.SealedSecret{Name: "session", KeyID: "k1", Value: value, CreatedAt: at(0)}
	must(t, s.CreateSealedSecret(ctx, x), "CreateSealedSecret")
	got, err := s.GetSealedSecret(ctx, "session")
	must(t, err, "GetSealedSecret")
	if got.Name != "session" || got.KeyID != "k1" || !bytes.Equal(got.Value, value) || !got.CreatedAt.Equal(at(0)) || !got.UpdatedAt.Equal(at(0)) {
		t.Errorf("GetSealedSecret = %+v", got)
	}
	if err := s.CreateSealedSecret(ctx, store.SealedSecret{Name: "session", KeyID: "k2", Value: []byte{2}}); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("second CreateSealedSecret: %v, want ErrAlreadyExists", err)
	}
	for _, bad := range []store.SealedSecret{{Value: []byte{1}}, {Name: "empty"}} {
		if err := s.CreateSealedSecret(ctx, bad); err == nil {
			t.Errorf("CreateSealedSecret(%+v): no error", bad)
		}
	}
	err = s.UpdateSealedSecret(ctx, "session", func(old store.SealedSecret) (store.SealedSecret, error) {
		old.KeyID, old.Value, old.UpdatedAt = "k2", []byte{9, 9}, at(time.Minute)
		return old, nil
	})
	must(t, err, "UpdateSealedSecret")
	got, err = s.GetSealedSecret(ctx, "session")
	must(t, err, "GetSealedSecret after update")
	if got.KeyID != "k2" || !bytes.Equal(got.Value, []byte{9, 9}) || !got.CreatedAt.Equal(at(0)) || !got.UpdatedAt.Equal(at(time.Minute)) {
		t.Errorf("after update: %+v", got)
	}
	rename := func(old store.SealedSecret) (store.SealedSecret, error) { old.Name = "other"; return old, nil }
	if err := s.UpdateSealedSecret(ctx, "session", rename); err == nil {
		t.Error("UpdateSealedSecret changed the name: no error")
	}
	fail := errors.New("refused")
	if err := s.UpdateSealedSecret(ctx, "session", func(store.SealedSecret) (store.SealedSecret, error) { return store.SealedSecret{}, fail }); !errors.Is(err, fail) {
		t.Errorf("UpdateSealedSecret returning an error: %v", err)
	}
	if err := s.UpdateSealedSecret(ctx, "missing", rename); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateSealedSecret of a missing name: %v, want ErrNotFound", err)
	}
	got, _ = s.GetSealedSecret(ctx, "session")
	if got.KeyID != "k2" {
		t.Errorf("a failed update changed the row: %+v", got)
	}
}

// testSealedSecretRace: replicas starting together each try to create
// the secret; exactly one wins and every one then reads the winner's.
func testSealedSecretRace(t *testing.T, s store.Store) {
	ctx := t.Context()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.CreateSealedSecret(ctx, store.SealedSecret{Name: "race", KeyID: "k", Value: []byte{byte(i + 1)}})
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrAlreadyExists):
			t.Errorf("losing create: %v, want ErrAlreadyExists", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d creates won, want 1", wins)
	}
}
