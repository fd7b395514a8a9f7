package connections

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestHandOutRefusedWhenCutOff: a cut-off user's vaulted token is not
// handed out, even while a decrypted copy is cached.
func TestHandOutRefusedWhenCutOff(t *testing.T) {
	m, st := newTestManager(t, "http://127.0.0.1:1/token")
	store1(t, m, st, secret{AccessToken: "alice-cal-token"}, time.Time{})
	ctx := context.Background()
	if tok, err := m.Token(ctx, "alice", "", "cal"); err != nil || tok != "alice-cal-token" {
		t.Fatalf("before: %q %v", tok, err) // and now it is cached
	}
	errCut := errors.New("disabled")
	m.SetAccess(func(_ context.Context, user string) error {
		if user == "alice" {
			return errCut
		}
		return nil
	})
	if tok, err := m.Token(ctx, "alice", "", "cal"); !errors.Is(err, errCut) || tok != "" {
		t.Errorf("after the cut-off: %q %v, want refused", tok, err)
	}
}
