package registration

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/mcpgate/mcpgate/internal/forwarded"
)

// Defaults of the registration limits (issue 8, finding 9: anonymous DCR
// was unlimited, hundreds of clients per second, kept forever).
const (
	DefaultPerAddressPerMinute = 10
	DefaultGlobalPerMinute     = 60
	maxTrackedAddresses        = 10000
)

// limiter bounds how fast clients register: per client address (IPv6 by
// /64, which one host typically holds whole) and from everyone together,
// each a token bucket whose burst is its per-minute rate.
type limiter struct {
	perAddress int
	global     *rate.Limiter

	mu    sync.Mutex
	addrs map[netip.Prefix]*rate.Limiter
}

func newLimiter(perAddress, global int) *limiter {
	if perAddress <= 0 {
		perAddress = DefaultPerAddressPerMinute
	}
	if global <= 0 {
		global = DefaultGlobalPerMinute
	}
	return &limiter{perAddress: perAddress, global: perMinute(global), addrs: map[netip.Prefix]*rate.Limiter{}}
}

func perMinute(n int) *rate.Limiter {
	return rate.NewLimiter(rate.Every(time.Minute/time.Duration(n)), n)
}

// allow takes one registration from addr's bucket and the global one at
// now; when either is empty it takes none and says how long to wait.
func (l *limiter) allow(addr netip.Prefix, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.addrs[addr]
	if a == nil {
		if len(l.addrs) >= maxTrackedAddresses {
			l.forgetIdle(now)
		}
		if len(l.addrs) >= maxTrackedAddresses {
			// Too many addresses at once: an attack from many hosts. The
			// global bucket would stop it too; failing closed is simpler.
			return false, time.Minute
		}
		a = perMinute(l.perAddress)
		l.addrs[addr] = a
	}
	ra := a.ReserveN(now, 1)
	rg := l.global.ReserveN(now, 1)
	if d := max(ra.DelayFrom(now), rg.DelayFrom(now)); d > 0 {
		ra.CancelAt(now)
		rg.CancelAt(now)
		return false, d
	}
	return true, 0
}

// forgetIdle drops addresses whose bucket is full again: they have not
// registered for a while, and a new bucket would be the same.
func (l *limiter) forgetIdle(now time.Time) {
	for k, a := range l.addrs {
		if a.TokensAt(now) >= float64(a.Burst()) {
			delete(l.addrs, k)
		}
	}
}

// RemoteAddr is the default Options.ClientAddr: the peer address of the
// connection.
func RemoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// addrKey is the bucket of an address (forwarded.Bucket: itself for IPv4,
// its /64 for IPv6); an unparsable address shares one bucket with every
// other.
func addrKey(s string) netip.Prefix { return forwarded.Bucket(s) }
