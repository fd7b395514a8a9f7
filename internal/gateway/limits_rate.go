package gateway

import (
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// The session caps bound how many sessions one owner holds at once, not
// how fast they come and go: initialize then DELETE in a loop stays under
// every cap while starting a stdio process each time (or making the
// upstream build a session each time). So initialize is also rate limited
// per owner, a token bucket of limits.initializes_per_minute with a burst
// of the same size: a person's client reconnecting never meets it, a loop
// does at once.

// DefaultInitializesPerMinute is Options.InitsPerMinute when unset.
const DefaultInitializesPerMinute = 30

// maxRateOwners bounds the buckets kept; past it, full (idle) buckets go.
const maxRateOwners = 10000

type initRate struct {
	perMinute int

	mu     sync.Mutex
	owners map[string]*rate.Limiter
}

func newInitRate(perMinute int) *initRate {
	if perMinute <= 0 {
		perMinute = DefaultInitializesPerMinute
	}
	return &initRate{perMinute: perMinute, owners: map[string]*rate.Limiter{}}
}

// allow takes a token of owner's bucket, or says how long until one is
// there. Called with the limits' lock held.
func (ir *initRate) allow(owner string, now time.Time) (wait time.Duration, ok bool) {
	ir.mu.Lock()
	defer ir.mu.Unlock()
	lim := ir.owners[owner]
	if lim == nil {
		if len(ir.owners) >= maxRateOwners {
			ir.dropFull(now)
		}
		lim = rate.NewLimiter(rate.Limit(float64(ir.perMinute)/60), ir.perMinute)
		ir.owners[owner] = lim
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// dropFull forgets the owners whose bucket has refilled: they are as if
// never seen.
func (ir *initRate) dropFull(now time.Time) {
	for o, lim := range ir.owners {
		if lim.TokensAt(now) >= float64(ir.perMinute) {
			delete(ir.owners, o)
		}
	}
}

// rateError is the refusal of an initialize that came too fast.
func rateError(perMinute int, wait time.Duration) *limitError {
	return &limitError{status: http.StatusTooManyRequests, key: "limits.initializes_per_minute",
		retry: int(math.Ceil(wait.Seconds())),
		msg:   fmt.Sprintf("too many new sessions (limit %d per minute); try again later", perMinute)}
}
