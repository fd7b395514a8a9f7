package storetest

import (
	"strconv"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// Bench measures the store's hot paths, the same way for every backend (a
// backend's BenchmarkStore calls it with a fresh store): the reads every
// token request makes (GetClient, GetUser), the writes of one authorization
// code's life (CreateAuthCode then ConsumeAuthCode), a refresh-token
// rotation, a connection update (the vault's refresh), and the revocation
// poll every replica runs (ListGrantRevocations).
func Bench(b *testing.B, s store.Store) {
	ctx := b.Context()
	if err := s.CreateClient(ctx, fullClient("c")); err != nil {
		b.Fatalf("CreateClient: %v", err)
	}
	if err := s.CreateUser(ctx, fullUser("u", "alice")); err != nil {
		b.Fatalf("CreateUser: %v", err)
	}
	if err := s.PutConnection(ctx, connection("u", "acme", "calendar-api")); err != nil {
		b.Fatalf("PutConnection: %v", err)
	}
	for i := range 20 {
		r := store.GrantRevocation{UserID: "u" + strconv.Itoa(i), RevokedAt: at(time.Duration(i) * time.Second)}
		if err := s.PutGrantRevocation(ctx, r); err != nil {
			b.Fatalf("PutGrantRevocation: %v", err)
		}
	}
	now := at(time.Second)
	// fresh names the rows of one run of a sub-benchmark (-count runs it
	// again on the same store).
	runs := 0
	fresh := func() string { runs++; return "bench" + strconv.Itoa(runs) + "-" }

	b.Run("GetClient", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.GetClient(ctx, "c"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetUser", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.GetUser(ctx, "u"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CreateConsumeAuthCode", func(b *testing.B) {
		p, i := fresh(), 0
		for b.Loop() {
			i++
			h := p + strconv.Itoa(i)
			if err := s.CreateAuthCode(ctx, authCode(h)); err != nil {
				b.Fatal(err)
			}
			if _, err := s.ConsumeAuthCode(ctx, h, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("RotateRefreshToken", func(b *testing.B) {
		p, i := fresh(), 0
		if err := s.CreateRefreshToken(ctx, refreshToken(p+"0", p)); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			old := p + strconv.Itoa(i)
			i++
			if _, err := s.RotateRefreshToken(ctx, old, refreshToken(p+strconv.Itoa(i), p), now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("UpdateConnection", func(b *testing.B) {
		for b.Loop() {
			err := s.UpdateConnection(ctx, "u", "acme", "calendar-api", func(c store.Connection) (store.Connection, error) {
				c.ExpiresAt = c.ExpiresAt.Add(time.Second)
				return c, nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ListGrantRevocations", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.ListGrantRevocations(ctx, at(10*time.Second)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
