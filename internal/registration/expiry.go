package registration

import (
	"context"
	"log/slog"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// Defaults of Expiry.
const (
	DefaultUnusedClientTTL = 24 * time.Hour
	DefaultIdleClientTTL   = 90 * 24 * time.Hour
	DefaultSweepInterval   = 10 * time.Minute
)

// Expiry deletes self-registered clients nobody uses (issue 8, finding
// 9): one that never completed a grant UnusedTTL after it registered, one
// that did IdleTTL after its last use. A deleted client gets invalid_client
// at its next request and registers again (DESIGN.md, "Lessons": a
// registration must not silently expire into a loop of failing calls).
// Only store.ClientDynamic clients are deleted; the store says when each
// was last used (grants records it).
type Expiry struct {
	Store     store.ClientActivity
	UnusedTTL time.Duration // default 24h
	IdleTTL   time.Duration // default 90 days
	Interval  time.Duration // between sweeps; default 10m
	Now       func() time.Time
	Logger    *slog.Logger
}

func (e *Expiry) defaults() {
	if e.UnusedTTL <= 0 {
		e.UnusedTTL = DefaultUnusedClientTTL
	}
	if e.IdleTTL <= 0 {
		e.IdleTTL = DefaultIdleClientTTL
	}
	if e.Interval <= 0 {
		e.Interval = DefaultSweepInterval
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Logger == nil {
		e.Logger = slog.New(slog.DiscardHandler)
	}
}

// Sweep deletes the stale clients once and counts them.
func (e *Expiry) Sweep(ctx context.Context) (int, error) {
	e.defaults()
	now := e.Now()
	n, err := e.Store.DeleteStaleClients(ctx, now.Add(-e.UnusedTTL), now.Add(-e.IdleTTL))
	if n > 0 {
		e.Logger.Info("unused registered clients deleted", "count", n)
	}
	return n, err
}

// Run sweeps at once and then every Interval until ctx ends. Several
// replicas sweeping at once is harmless: the deletes are idempotent.
func (e *Expiry) Run(ctx context.Context) {
	e.defaults()
	t := time.NewTicker(e.Interval)
	defer t.Stop()
	for {
		if _, err := e.Sweep(ctx); err != nil && ctx.Err() == nil {
			e.Logger.Warn("client expiry sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
