package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// Store is what the access state needs from storage.
type Store interface {
	store.AccessStore
	PutGrantRevocation(ctx context.Context, r store.GrantRevocation) error
	ListGrantRevocations(ctx context.Context, since time.Time) ([]store.GrantRevocation, error)
	DeleteGrantRevocationsBefore(ctx context.Context, before time.Time) (int, error)
}

// Why Check refuses. Callers show a generic message (a token's holder need
// not learn which rule hit) and may log these.
var (
	ErrRevoked  = errors.New("access: revoked")
	ErrDisabled = errors.New("access: the user is disabled")
	ErrReplayed = errors.New("access: already used")
)

// Defaults of Options.
const (
	DefaultRefresh     = 3 * time.Second
	DefaultMaxTokenAge = time.Hour
)

// Options configures a Checker. The zero value is usable.
type Options struct {
	// Refresh is how often Run re-reads the store: the longest another
	// replica's change takes to apply here. Default DefaultRefresh.
	Refresh time.Duration
	// MaxTokenAge bounds how long any token this server issues lives
	// (access, identity and exchanged tokens): revocations by time (of a
	// grant, a client) are kept that long. Default DefaultMaxTokenAge.
	MaxTokenAge time.Duration
	Now         func() time.Time
	Logger      *slog.Logger
}

// Subject is what a token (or a refresh token) says about whom it serves.
type Subject struct {
	UserID   string // sub (for client_credentials tokens, the client)
	ClientID string
	JTI      string
	// ParentJTI is the jti of the access token this token was derived
	// from (identity tokens for upstreams, exchanged tokens): revoking
	// the parent cuts its descendants.
	ParentJTI string
	// GrantID names the authorization (refresh-token family) the token
	// descends from; "" for tokens without one (client_credentials).
	GrantID  string
	IssuedAt time.Time
}

// FromClaims is the Subject of verified access-token claims.
func FromClaims(c *tokens.Claims) Subject {
	return Subject{UserID: c.Subject, ClientID: c.ClientID, JTI: c.ID, ParentJTI: c.ParentID, GrantID: c.GrantID, IssuedAt: c.IssuedAt}
}

type pair struct{ user, client string }

// snapshot is the immutable state Check reads. Writers copy it.
type snapshot struct {
	tokens   map[string]time.Time // revoked jti -> entry expiry
	grants   map[string]time.Time // revoked grant id -> entry expiry
	clients  map[string]time.Time // removed client -> tokens issued before are refused
	users    map[pair]time.Time   // grant revocations: (user, client|"") -> revoked at
	disabled map[string]bool
}

func emptySnapshot() *snapshot {
	return &snapshot{tokens: map[string]time.Time{}, grants: map[string]time.Time{}, clients: map[string]time.Time{},
		users: map[pair]time.Time{}, disabled: map[string]bool{}}
}

func (s *snapshot) clone() *snapshot {
	return &snapshot{tokens: maps.Clone(s.tokens), grants: maps.Clone(s.grants), clients: maps.Clone(s.clients),
		users: maps.Clone(s.users), disabled: maps.Clone(s.disabled)}
}

// change is a local write, kept until a reload that started after it
// was stored has finished (so a reload racing it cannot undo it).
type change struct {
	seq   uint64
	apply func(*snapshot)
}

// Checker answers Check from memory and writes changes through to the
// store. Safe for concurrent use.
type Checker struct {
	st    Store // nil: memory only (tests, tools)
	o     Options
	state atomic.Pointer[snapshot]

	mu      sync.Mutex // serialises writers of state
	seq     uint64
	pending []change
	seen    map[string]time.Time // memory-only replay cache
}

// New returns a Checker over st (nil: state in memory only, per process).
// Call Reload before serving so the first checks see the stored state.
func New(st Store, opts *Options) *Checker {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Refresh <= 0 {
		o.Refresh = DefaultRefresh
	}
	if o.MaxTokenAge <= 0 {
		o.MaxTokenAge = DefaultMaxTokenAge
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Checker{st: st, o: o, seen: map[string]time.Time{}}
	c.state.Store(emptySnapshot())
	return c
}

// Check reports whether a token (or refresh token) of s may still be
// used: nil when it may, ErrRevoked or ErrDisabled when it is cut off.
// It reads memory only (no store access), so it may run on every request.
func (c *Checker) Check(_ context.Context, s Subject) error {
	st := c.state.Load()
	if s.JTI != "" {
		if _, ok := st.tokens[s.JTI]; ok {
			return ErrRevoked
		}
	}
	if s.ParentJTI != "" {
		if _, ok := st.tokens[s.ParentJTI]; ok {
			return ErrRevoked
		}
	}
	if s.GrantID != "" {
		if _, ok := st.grants[s.GrantID]; ok {
			return ErrRevoked
		}
	}
	if s.UserID != "" {
		if st.disabled[s.UserID] {
			return ErrDisabled
		}
		if at, ok := st.users[pair{s.UserID, s.ClientID}]; ok && s.IssuedAt.Before(at) {
			return ErrRevoked
		}
		if at, ok := st.users[pair{s.UserID, ""}]; ok && s.IssuedAt.Before(at) {
			return ErrRevoked
		}
	}
	if s.ClientID != "" {
		if at, ok := st.clients[s.ClientID]; ok && s.IssuedAt.Before(at) {
			return ErrRevoked
		}
	}
	return nil
}

// Disabled reports whether an admin disabled the user (memory only).
func (c *Checker) Disabled(userID string) bool { return c.state.Load().disabled[userID] }

// CheckUser is the check for handing out a user's stored credentials
// outside a token's context (the vault): nil unless the user is disabled.
func (c *Checker) CheckUser(_ context.Context, userID string) error {
	if c.Disabled(userID) {
		return ErrDisabled
	}
	return nil
}

// apply records a local change: applied to this process's state at once,
// and kept so that a reload racing it does not undo it.
func (c *Checker) apply(f func(*snapshot)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.state.Load().clone()
	f(next)
	c.state.Store(next)
	if c.st != nil {
		c.seq++
		c.pending = append(c.pending, change{seq: c.seq, apply: f})
	}
}

func (c *Checker) put(ctx context.Context, e store.AccessEntry) error {
	if c.st == nil {
		return nil
	}
	if err := c.st.PutAccessEntry(ctx, e); err != nil {
		return fmt.Errorf("access: store %s: %w", e.Kind, err)
	}
	return nil
}

// RevokeToken refuses the access token with this jti (RFC 7009), which
// expires at exp, and every token minted from it (ParentJTI). Those are
// minted while it is valid and live up to MaxTokenAge, so possibly past
// exp: the revocation is kept until exp + MaxTokenAge, or a child would
// work again once its parent's entry was swept.
func (c *Checker) RevokeToken(ctx context.Context, jti string, exp time.Time) error {
	if jti == "" {
		return errors.New("access: revoke token: empty jti")
	}
	exp = exp.Add(c.o.MaxTokenAge)
	if err := c.put(ctx, store.AccessEntry{Kind: store.AccessRevokedToken, ID: jti, At: c.o.Now(), ExpiresAt: exp}); err != nil {
		return err
	}
	c.apply(func(s *snapshot) { s.tokens[jti] = exp })
	return nil
}

// RevokeGrant refuses every token that descends from the grant (a replayed
// authorization code, OAuth 2.1 §4.1.3; a revoked or reused refresh token,
// RFC 7009 §2.1). The refresh-token family is the caller's to revoke.
func (c *Checker) RevokeGrant(ctx context.Context, grantID string) error {
	if grantID == "" {
		return errors.New("access: revoke grant: empty grant id")
	}
	now := c.o.Now()
	exp := now.Add(c.o.MaxTokenAge)
	if err := c.put(ctx, store.AccessEntry{Kind: store.AccessRevokedGrant, ID: grantID, At: now, ExpiresAt: exp}); err != nil {
		return err
	}
	c.apply(func(s *snapshot) { s.grants[grantID] = exp })
	return nil
}

// RevokeUser refuses the tokens issued to a user for a client (clientID
// "": every client) until now; tokens issued later are not affected.
func (c *Checker) RevokeUser(ctx context.Context, userID, clientID string) error {
	if userID == "" {
		return errors.New("access: revoke user: empty user id")
	}
	now := c.o.Now()
	if c.st != nil {
		if err := c.st.PutGrantRevocation(ctx, store.GrantRevocation{UserID: userID, ClientID: clientID, RevokedAt: now}); err != nil {
			return fmt.Errorf("access: store grant revocation: %w", err)
		}
	}
	c.apply(func(s *snapshot) {
		if s.users[pair{userID, clientID}].Before(now) {
			s.users[pair{userID, clientID}] = now
		}
	})
	return nil
}

// RemoveClient refuses the tokens issued to a client until now (it left
// the config, or was deleted).
func (c *Checker) RemoveClient(ctx context.Context, clientID string) error {
	if clientID == "" {
		return errors.New("access: remove client: empty client id")
	}
	now := c.o.Now()
	if err := c.put(ctx, store.AccessEntry{Kind: store.AccessRemovedClient, ID: clientID, At: now, ExpiresAt: now.Add(c.o.MaxTokenAge)}); err != nil {
		return err
	}
	c.apply(func(s *snapshot) {
		if s.clients[clientID].Before(now) {
			s.clients[clientID] = now
		}
	})
	return nil
}

// DisableUser cuts a user off: every token of theirs is refused and they
// cannot sign in, until EnableUser. Kept apart from the user's record, so
// it holds for users the config declares too, across restarts. Tokens
// issued before stay refused after EnableUser: enabling lets the user
// sign in again, it does not revive what was cut.
func (c *Checker) DisableUser(ctx context.Context, userID string) error {
	if userID == "" {
		return errors.New("access: disable: empty user id")
	}
	if err := c.RevokeUser(ctx, userID, ""); err != nil {
		return err
	}
	if err := c.put(ctx, store.AccessEntry{Kind: store.AccessDisabledUser, ID: userID, At: c.o.Now()}); err != nil {
		return err
	}
	c.apply(func(s *snapshot) { s.disabled[userID] = true })
	return nil
}

// EnableUser lifts DisableUser (a no-op for a user not disabled).
func (c *Checker) EnableUser(ctx context.Context, userID string) error {
	if c.st != nil {
		if err := c.st.DeleteAccessEntry(ctx, store.AccessDisabledUser, userID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("access: enable: %w", err)
		}
	}
	c.apply(func(s *snapshot) { delete(s.disabled, userID) })
	return nil
}

// FirstUse records a single-use value (a private_key_jwt assertion's
// client and jti, RFC 7523 §3 item 7) until exp: nil the first time,
// ErrReplayed after, on every replica (the store decides atomically).
func (c *Checker) FirstUse(ctx context.Context, key string, exp time.Time) error {
	now := c.o.Now()
	if c.st == nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.seen) > 10000 {
			for k, e := range c.seen {
				if !now.Before(e) {
					delete(c.seen, k)
				}
			}
		}
		if e, ok := c.seen[key]; ok && now.Before(e) {
			return ErrReplayed
		}
		c.seen[key] = exp
		return nil
	}
	err := c.st.AddAccessEntry(ctx, store.AccessEntry{Kind: store.AccessUsedAssertion, ID: key, At: now, ExpiresAt: exp}, now)
	if errors.Is(err, store.ErrAlreadyExists) {
		return ErrReplayed
	}
	if err != nil {
		return fmt.Errorf("access: record single use: %w", err)
	}
	return nil
}

// Reload reads the stored state and swaps it in, keeping local changes
// the read may have missed.
func (c *Checker) Reload(ctx context.Context) error {
	if c.st == nil {
		return nil
	}
	c.mu.Lock()
	start := c.seq
	c.mu.Unlock()
	next, err := c.read(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.pending[:0]
	for _, ch := range c.pending {
		if ch.seq > start {
			ch.apply(next) // stored after the read began: maybe not in it
			kept = append(kept, ch)
		}
	}
	c.pending = kept
	c.state.Store(next)
	return nil
}

func (c *Checker) read(ctx context.Context) (*snapshot, error) {
	now := c.o.Now()
	next := emptySnapshot()
	for kind, into := range map[string]func(store.AccessEntry){
		store.AccessRevokedToken:  func(e store.AccessEntry) { next.tokens[e.ID] = e.ExpiresAt },
		store.AccessRevokedGrant:  func(e store.AccessEntry) { next.grants[e.ID] = e.ExpiresAt },
		store.AccessRemovedClient: func(e store.AccessEntry) { next.clients[e.ID] = e.At },
		store.AccessDisabledUser:  func(e store.AccessEntry) { next.disabled[e.ID] = true },
	} {
		es, err := c.st.ListAccessEntries(ctx, kind, now)
		if err != nil {
			return nil, fmt.Errorf("access: read %s: %w", kind, err)
		}
		for _, e := range es {
			into(e)
		}
	}
	// Older revocations cannot predate a live token.
	rs, err := c.st.ListGrantRevocations(ctx, now.Add(-c.o.MaxTokenAge))
	if err != nil {
		return nil, fmt.Errorf("access: read grant revocations: %w", err)
	}
	for _, r := range rs {
		next.users[pair{r.UserID, r.ClientID}] = r.RevokedAt
	}
	return next, nil
}

// Run re-reads the store every Options.Refresh until ctx ends, and
// deletes expired state now and then.
func (c *Checker) Run(ctx context.Context) {
	if c.st == nil {
		return
	}
	t := time.NewTicker(c.o.Refresh)
	defer t.Stop()
	sweepEvery := max(1, int(10*time.Minute/c.o.Refresh))
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.Reload(ctx); err != nil && ctx.Err() == nil {
			// Keep the last state: failing open would forget revocations.
			c.o.Logger.Warn("reading access state failed; keeping the last one", "err", err)
		}
		if i%sweepEvery == 0 {
			c.Sweep(ctx)
		}
	}
}

// Sweep deletes state that can no longer matter (expired entries, grant
// revocations older than any live token).
func (c *Checker) Sweep(ctx context.Context) {
	if c.st == nil {
		return
	}
	now := c.o.Now()
	if _, err := c.st.DeleteExpiredAccessEntries(ctx, now); err != nil && ctx.Err() == nil {
		c.o.Logger.Warn("access sweep failed", "err", err)
	}
	if _, err := c.st.DeleteGrantRevocationsBefore(ctx, now.Add(-c.o.MaxTokenAge)); err != nil && ctx.Err() == nil {
		c.o.Logger.Warn("grant revocation sweep failed", "err", err)
	}
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
