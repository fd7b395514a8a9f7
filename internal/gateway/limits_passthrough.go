package gateway

import (
	"net/http"
	"sync"
	"time"
)

// Passthrough sessions count too. The gateway keeps no state for them,
// but each one the upstream holds costs it memory (and, for an upstream
// that starts a worker per session, a process), and the gateway is what
// lets anyone reach it: without a cap one token could initialize until
// the upstream falls over. So a passthrough initialize takes a slot in
// the same limits as a bridge session (limits.sessions_per_user,
// limits.max_sessions), and the passthrough remembers the sessions it
// opened to give their slots back when they end: DELETE, the upstream
// forgetting the session (404), or idle expiry
// (Options.SessionIdleTimeout), after which the session id answers 404
// like a bridge session's and the client initializes anew.
//
// A session another replica opened is not in this replica's memory; it
// counts where it was opened and passes here unchanged.

// liveSessions are the sessions one passthrough opened, by sealed id.
type liveSessions struct {
	idle time.Duration

	mu   sync.Mutex
	byID map[string]*liveSession
}

type liveSession struct {
	release  func()
	lastUse  time.Time
	inflight int // requests (and GET streams) running: never idle then
}

func newLiveSessions(idle time.Duration) *liveSessions {
	return &liveSessions{idle: idle, byID: map[string]*liveSession{}}
}

// add records a new session holding the slot release frees.
func (l *liveSessions) add(sid string, release func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.byID[sid] = &liveSession{release: release, lastUse: time.Now()}
}

// use marks sid busy until the returned function is called; for a
// session opened elsewhere it does nothing.
func (l *liveSessions) use(sid string) (done func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.byID[sid]
	if s == nil {
		return func() {}
	}
	s.inflight++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		s.inflight--
		s.lastUse = time.Now()
	}
}

// end forgets sid and frees its slot (DELETE, or the upstream lost it).
func (l *liveSessions) end(sid string) {
	l.mu.Lock()
	s := l.byID[sid]
	delete(l.byID, sid)
	l.mu.Unlock()
	if s != nil {
		s.release()
	}
}

// expire ends the sessions idle longer than the idle timeout and returns
// their ids. It runs before each initialize: that is when a slot is
// wanted, so a slot is never held past its expiry by someone who wants it.
func (l *liveSessions) expire(now time.Time) []string {
	l.mu.Lock()
	var gone []*liveSession
	var ids []string
	for id, s := range l.byID {
		if s.inflight == 0 && now.Sub(s.lastUse) > l.idle {
			gone = append(gone, s)
			ids = append(ids, id)
			delete(l.byID, id)
		}
	}
	l.mu.Unlock()
	for _, s := range gone {
		s.release()
	}
	return ids
}

// reserveInit takes the session slots of a passthrough initialize
// (request id), after ending idle sessions, or says which limit is full.
func (p *passthrough) reserveInit(r *http.Request, fr *frontRequest) (release func(), _ error) {
	for _, id := range p.live.expire(time.Now()) {
		p.terminated.add(id)
	}
	release, lerr := p.g.limits.acquire(p.name, sessionOwner(r))
	if lerr != nil {
		return nil, lerr.rpcError(fr.requestID())
	}
	return release, nil
}

// settle keeps track of a session after the upstream answered: a new
// session keeps its slot (release) under sid, a failed initialize gives it
// back, and a session the upstream ended (DELETE) or forgot (404) frees
// its slot.
func (p *passthrough) settle(r *http.Request, fr *frontRequest, status int, sid string, release func()) {
	switch {
	case release != nil && sid != "":
		p.live.add(sid, release)
	case release != nil:
		release()
	case fr.sessionID == "":
	case r.Method == http.MethodDelete && (status < 300 || status == http.StatusMethodNotAllowed),
		status == http.StatusNotFound:
		p.live.end(fr.sessionID)
	}
}
