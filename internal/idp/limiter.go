package idp

import (
	"sync"
	"time"
)

// Limiter slows password guessing down per key (the directory's key is a
// username with a client address) with exponential backoff: the first
// free failures cost nothing; each later one locks the key for
// BaseDelay·2^(n−free), at most max. A key is forgotten once it has been
// quiet for max, and a success forgets it at once. Memory is bounded: at
// most MaxKeys keys are kept; when full, forgotten keys go first, then the
// key whose lock ends soonest (the one whose loss matters least), so a
// flood of new keys cannot wipe a guesser's growing delay.
type Limiter struct {
	free    int
	max     time.Duration
	now     func() time.Time
	maxKeys int // MaxKeys; smaller in tests

	mu   sync.Mutex
	keys map[string]*attempts
}

// attempts is one key's recent failures.
type attempts struct {
	n     int       // failures since the key was last forgotten
	last  time.Time // the latest failure
	until time.Time // locked until then
}

// BaseDelay is the first lock, after the free failures.
const BaseDelay = time.Second

// MaxKeys bounds how many keys a Limiter remembers.
const MaxKeys = 100_000

// NewLimiter returns a limiter that allows free failures per key before
// delays start, with delays up to max; now may be nil (time.Now).
func NewLimiter(free int, max time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{free: free, max: max, now: now, maxKeys: MaxKeys, keys: map[string]*attempts{}}
}

// Locked reports whether key must wait before its next attempt counts.
func (l *Limiter) Locked(key string) bool { return l.Wait(key) > 0 }

// Wait is how long key is still locked (0: not locked).
func (l *Limiter) Wait(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.keys[key]
	if a == nil {
		return 0
	}
	return max(0, a.until.Sub(l.now()))
}

// Fail records a failure of key and, past the free ones, locks it.
func (l *Limiter) Fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	a := l.keys[key]
	if a != nil && l.forgotten(a, now) {
		a = nil
	}
	if a == nil {
		l.makeRoom(now)
		a = &attempts{}
		l.keys[key] = a
	}
	a.n++
	a.last = now
	if over := a.n - l.free; over >= 0 {
		a.until = now.Add(l.delay(over))
	}
}

// delay is the lock after the over-th failure past the free ones.
func (l *Limiter) delay(over int) time.Duration {
	if over >= 40 { // 2^40 s is far past any sensible max
		return l.max
	}
	return min(BaseDelay<<over, l.max)
}

// Reset forgets key (after a success).
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	delete(l.keys, key)
	l.mu.Unlock()
}

// forgotten reports whether a has been quiet long enough to be dropped.
func (l *Limiter) forgotten(a *attempts, now time.Time) bool {
	return !now.Before(a.until) && now.Sub(a.last) >= l.max
}

// makeRoom keeps the map below MaxKeys: it drops forgotten keys and, if
// that is not enough, the key whose lock ends soonest.
func (l *Limiter) makeRoom(now time.Time) {
	if len(l.keys) < l.maxKeys {
		return
	}
	var victim string
	var soonest *attempts
	for k, a := range l.keys {
		switch {
		case l.forgotten(a, now):
			delete(l.keys, k)
		case soonest == nil || a.until.Before(soonest.until) || (a.until.Equal(soonest.until) && a.last.Before(soonest.last)):
			victim, soonest = k, a
		}
	}
	if len(l.keys) >= l.maxKeys {
		delete(l.keys, victim)
	}
}

// size is how many keys are remembered (tests).
func (l *Limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}
