package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/internal/forwarded"
)

// Session limits (audit finding 9). A session the gateway holds (bridge:
// stdio, legacy SSE, aggregation) costs memory and, for a stdio upstream,
// a process; without a cap one user could initialize until the machine
// runs out. Every such session takes a slot for its owner (the verified
// user; on an unprotected server, the client address) and for its server
// when initialize starts, before any upstream is dialled, and gives both
// back when the session ends, however it ends: DELETE, idle expiry, the
// gateway closing, or every upstream of the session failing for good.
//
// Passthrough sessions live in the upstream (their state travels sealed
// in the id) but take slots in the same limits: see limits_passthrough.go.

// CodeSessionLimit is the JSON-RPC error code of an initialize refused
// by a session limit (implementation-defined server error range).
const CodeSessionLimit = -32015

// limitRetryAfter is the Retry-After (seconds) of a refused initialize:
// slots free as other sessions end.
const limitRetryAfter = 30

// DefaultSessionsPerUser is Options.SessionsPerUser when unset.
const DefaultSessionsPerUser = 20

// DefaultMaxBatch is Options.MaxBatch when unset.
const DefaultMaxBatch = 100

// DefaultMaxInFlight is Options.MaxInFlight when unset. A client that
// sends requests and hangs up leaves each call pending (an entry, a timer,
// a send to the upstream) until the upstream answers or times out; the
// cap bounds what one session can pile up that way.
const DefaultMaxInFlight = 256

// sessionLimits counts live sessions per owner and per server.
type sessionLimits struct {
	perUser, perServer int
	rate               *initRate // initializes per owner per minute (limits_rate.go)

	mu      sync.Mutex
	owners  map[string]int
	servers map[string]int
}

func newSessionLimits(perUser, perServer int) *sessionLimits {
	if perUser <= 0 {
		perUser = DefaultSessionsPerUser
	}
	return &sessionLimits{perUser: perUser, perServer: perServer, owners: map[string]int{}, servers: map[string]int{}}
}

// limitError is a refusal: the HTTP status, and what the client reads.
type limitError struct {
	status int
	key    string // the config key that sets the limit
	msg    string
	retry  int // Retry-After in seconds; 0: limitRetryAfter
}

// rpcError answers the refused initialize id: 429 or 503 with
// Retry-After and a JSON-RPC error naming the limit.
func (e *limitError) rpcError(id json.RawMessage) *rpcError {
	retry := limitRetryAfter
	if e.retry > 0 {
		retry = e.retry
	}
	re := refuse(e.status, CodeSessionLimit, e.msg).answering(id).because(fmt.Errorf("session limit %s reached", e.key))
	re.Data, _ = json.Marshal(map[string]any{"limit": e.key, "retryAfter": retry})
	return re.withHeader("Retry-After", strconv.Itoa(retry))
}

// acquire takes a slot for owner on server, or says which limit is full.
// The release function returned gives the slot back; it is safe to call
// more than once.
func (l *sessionLimits) acquire(server, owner string) (release func(), _ *limitError) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.servers[server] >= l.perServer {
		return nil, &limitError{status: http.StatusServiceUnavailable, key: "limits.max_sessions",
			msg: fmt.Sprintf("server %q is at its session limit (%d); try again later", server, l.perServer)}
	}
	if l.owners[owner] >= l.perUser {
		return nil, &limitError{status: http.StatusTooManyRequests, key: "limits.sessions_per_user",
			msg: fmt.Sprintf("too many open sessions (limit %d): end unused sessions (HTTP DELETE) or try again later", l.perUser)}
	}
	if l.rate != nil {
		if wait, ok := l.rate.allow(owner, time.Now()); !ok {
			return nil, rateError(l.rate.perMinute, wait)
		}
	}
	l.servers[server]++
	l.owners[owner]++
	var once sync.Once
	return func() { once.Do(func() { l.release(server, owner) }) }, nil
}

func (l *sessionLimits) release(server, owner string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.servers[server]--; l.servers[server] <= 0 {
		delete(l.servers, server)
	}
	if l.owners[owner]--; l.owners[owner] <= 0 {
		delete(l.owners, owner)
	}
}

// held is how many slots owner holds (tests).
func (l *sessionLimits) held(owner string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.owners[owner]
}

// sessionOwner is whom a new session counts against: the verified user,
// else (an unprotected server) the client's address.
func sessionOwner(r *http.Request) string {
	if sub := subjectOf(r); sub != "" {
		return "user:" + sub
	}
	return "addr:" + forwarded.ClientAddr(r)
}

// takeSlot reserves the session slots of an initialize (request id) on
// b, or says which limit is full.
func (b *bridge) takeSlot(r *http.Request, id json.RawMessage) (release func(), _ error) {
	release, lerr := b.g.limits.acquire(b.name, sessionOwner(r))
	if lerr != nil {
		return nil, lerr.rpcError(id)
	}
	return release, nil
}

// freeSlot gives the session's slots back (session.close calls it once).
func (s *session) freeSlot() {
	if s.release != nil {
		s.release()
	}
}

// endWhenUpstreamsFail ends s, and frees its slots, once every upstream
// link of it has failed for good (a stdio server that used up its
// restarts, an HTTP upstream that forgot the session): such a session can
// serve nothing, and keeping it would hold its owner's slot until idle
// expiry.
func (b *bridge) endWhenUpstreamsFail(s *session) {
	defer b.g.wg.Done()
	for _, u := range s.ups {
		if u.link == nil {
			continue
		}
		select {
		case <-u.link.Done():
		case <-s.ctx.Done():
			return
		}
	}
	b.mu.Lock()
	if b.sessions[s.id] == s {
		delete(b.sessions, s.id)
	}
	b.mu.Unlock()
	b.g.log.Info("closing session: its upstreams are gone", "server", b.name)
	s.close()
}
