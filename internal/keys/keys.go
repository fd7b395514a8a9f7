// Package keys manages the authorization server's token-signing keys:
// it generates them, persists them through the store (the private key as
// a private JWK in JSON, sealed with the vault key: see sealing.go),
// rotates them with an overlap so tokens signed by
// a retired key stay verifiable until they expire, and publishes the
// public halves (the JWKS).
//
// A Manager keeps an immutable snapshot of the keys behind an atomic
// pointer: Signing, Lookup and PublicKeys never touch the store. Run
// re-reads the store every Options.Reload so a rotation done elsewhere
// (the `mcpgate keys rotate` command, another replica) is picked up.
//
// Key lifecycle, per store.SigningKey: a key signs from ActiveFrom until
// RetiredAt, and is published and trusted until ExpiresAt. Rotate retires
// the signing key with ExpiresAt = RetiredAt + Overlap, so Overlap must
// exceed the longest access-token lifetime (plus Reload, since a replica
// may keep signing with a retired key until its next reload).
package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate/internal/store"
)

// Store is the part of store.Store the key manager uses.
type Store interface {
	ListSigningKeys(ctx context.Context) ([]store.SigningKey, error)
	CreateSigningKey(ctx context.Context, k store.SigningKey) error
	UpdateSigningKey(ctx context.Context, id string, update func(store.SigningKey) (store.SigningKey, error)) error
	DeleteSigningKey(ctx context.Context, id string) error
}

// Supported signing algorithms.
const (
	ES256 = string(jose.ES256)
	RS256 = string(jose.RS256)
)

// Defaults for Options.
const (
	DefaultAlgorithm = ES256
	DefaultOverlap   = time.Hour
	DefaultReload    = 30 * time.Second
)

// rsaBits is the modulus size of generated RS256 keys.
const rsaBits = 2048

// ErrNoSigningKey is returned by Signing when no key may sign now.
var ErrNoSigningKey = errors.New("keys: no active signing key")

// Options configures a Manager and Rotate. The zero value is usable.
type Options struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Algorithm of newly generated keys: ES256 (default) or RS256. Keys
	// already stored keep their own algorithm.
	Algorithm string
	// Overlap is how long a retired key stays published and trusted
	// (ExpiresAt = RetiredAt + Overlap). Default 1h. It must exceed the
	// longest access-token lifetime plus Reload.
	Overlap time.Duration
	// Prepublish delays when a key created by Rotate starts signing
	// (ActiveFrom = now + Prepublish; the old key keeps signing until
	// then), so that every replica's verifier has loaded it before the
	// first token it signs is presented. 0 (default) = active at once;
	// set it to Reload when several replicas verify tokens.
	Prepublish time.Duration
	// Reload is how often Run re-reads the store. Default 30s.
	Reload time.Duration
	// Logger; discarded when nil.
	Logger *slog.Logger
	// Sealer encrypts private keys at rest (the vault); nil keeps them as
	// clear JSON, which only tests should do. With a Sealer, Init seals
	// every key still stored in the clear (by an older version).
	Sealer Sealer
}

// Sealer seals and opens private keys at rest; *vault.Vault is one.
type Sealer interface {
	Seal(plaintext, aad []byte) (ciphertext []byte, keyID string, err error)
	Open(ciphertext, aad []byte) ([]byte, error)
	SealedWithCurrent(ciphertext []byte) bool
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	if out.Algorithm == "" {
		out.Algorithm = DefaultAlgorithm
	}
	if out.Overlap <= 0 {
		out.Overlap = DefaultOverlap
	}
	if out.Prepublish < 0 {
		out.Prepublish = 0
	}
	if out.Reload <= 0 {
		out.Reload = DefaultReload
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return out
}

// SigningKey is a private key to sign tokens with.
type SigningKey struct {
	ID        string                  // the JWK "kid" (the RFC 7638 thumbprint of a generated key)
	Algorithm jose.SignatureAlgorithm // the JWS "alg"
	Key       crypto.Signer           // *ecdsa.PrivateKey or *rsa.PrivateKey
}

// Public returns the public JWK of k, with kid, alg and use=sig.
func (k SigningKey) Public() *jose.JSONWebKey {
	return &jose.JSONWebKey{Key: k.Key.Public(), KeyID: k.ID, Algorithm: string(k.Algorithm), Use: "sig"}
}

// Generate creates a new key pair for alg (ES256 or RS256). Its ID is
// the base64url SHA-256 JWK thumbprint (RFC 7638) of the public key.
func Generate(alg string) (SigningKey, error) {
	if err := checkAlgorithm(alg); err != nil {
		return SigningKey{}, err
	}
	var priv crypto.Signer
	var err error
	if alg == RS256 {
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	} else {
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	pub := jose.JSONWebKey{Key: priv.Public()}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return SigningKey{}, fmt.Errorf("keys: thumbprint: %w", err)
	}
	return SigningKey{ID: base64.RawURLEncoding.EncodeToString(tp), Algorithm: jose.SignatureAlgorithm(alg), Key: priv}, nil
}

func checkAlgorithm(alg string) error {
	if alg != ES256 && alg != RS256 {
		return fmt.Errorf("keys: unsupported algorithm %q (want ES256 or RS256)", alg)
	}
	return nil
}

// record is the store form of k, active from activeFrom.
func (k SigningKey) record(now, activeFrom time.Time) (store.SigningKey, error) {
	priv, err := jose.JSONWebKey{Key: k.Key, KeyID: k.ID, Algorithm: string(k.Algorithm), Use: "sig"}.MarshalJSON()
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("keys: encode private JWK: %w", err)
	}
	return store.SigningKey{
		ID:         k.ID,
		Algorithm:  string(k.Algorithm),
		Private:    priv,
		CreatedAt:  now,
		ActiveFrom: activeFrom,
	}, nil
}

// parseRecord decodes a stored key and checks its material fits its
// algorithm.
func parseRecord(r store.SigningKey) (SigningKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(r.Private); err != nil {
		return SigningKey{}, fmt.Errorf("decode private JWK: %w", err)
	}
	if jwk.IsPublic() {
		return SigningKey{}, errors.New("JWK holds no private key")
	}
	alg := r.Algorithm
	if alg == "" {
		alg = jwk.Algorithm
	}
	switch key := jwk.Key.(type) {
	case *ecdsa.PrivateKey:
		if alg != ES256 || key.Curve != elliptic.P256() {
			return SigningKey{}, fmt.Errorf("EC key on %s does not fit algorithm %q", key.Curve.Params().Name, alg)
		}
	case *rsa.PrivateKey:
		if alg != RS256 || key.N.BitLen() < rsaBits {
			return SigningKey{}, fmt.Errorf("%d-bit RSA key does not fit algorithm %q", key.N.BitLen(), alg)
		}
	default:
		return SigningKey{}, fmt.Errorf("unsupported key type %T", jwk.Key)
	}
	return SigningKey{ID: r.ID, Algorithm: jose.SignatureAlgorithm(alg), Key: jwk.Key.(crypto.Signer)}, nil
}

// signsAt reports whether r may sign at t.
func signsAt(r store.SigningKey, t time.Time) bool {
	return !r.ActiveFrom.After(t) &&
		(r.RetiredAt.IsZero() || t.Before(r.RetiredAt)) &&
		(r.ExpiresAt.IsZero() || t.Before(r.ExpiresAt))
}

// expiredAt reports whether r is no longer trusted at t.
func expiredAt(r store.SigningKey, t time.Time) bool {
	return !r.ExpiresAt.IsZero() && !t.Before(r.ExpiresAt)
}

// newer orders keys newest first: by ActiveFrom, then CreatedAt, then ID,
// so that every replica picks the same key when two were created at once.
func newer(a, b store.SigningKey) int {
	if c := b.ActiveFrom.Compare(a.ActiveFrom); c != 0 {
		return c
	}
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	switch {
	case a.ID > b.ID:
		return -1
	case a.ID < b.ID:
		return 1
	}
	return 0
}

// entry is one loaded key. Immutable once in a snapshot.
type entry struct {
	rec    store.SigningKey // Private cleared
	priv   []byte           // the stored Private, to reuse the parse on reload
	key    SigningKey
	public *jose.JSONWebKey
}

// snapshot is an immutable view of the keys.
type snapshot struct {
	entries []*entry // newest first (see newer)
	byKID   map[string]*entry
}

func (s *snapshot) signing(now time.Time) *entry {
	for _, e := range s.entries {
		if signsAt(e.rec, now) {
			return e
		}
	}
	return nil
}

// Manager holds the signing keys of a running server.
type Manager struct {
	store Store
	opts  Options
	snap  atomic.Pointer[snapshot]

	kick     chan struct{} // a lookup missed: reload soon
	lastKick atomic.Int64  // unix nanos of the last kick
}

// minKickInterval bounds how often unknown kids may trigger a reload.
const minKickInterval = 5 * time.Second

// New returns a Manager over s. Call Init before use.
func New(s Store, opts *Options) *Manager {
	m := &Manager{store: s, opts: opts.withDefaults(), kick: make(chan struct{}, 1)}
	m.snap.Store(&snapshot{byKID: map[string]*entry{}})
	return m
}

// Init loads the keys and, when none may sign now, creates one active at
// once. Replicas starting together may each create a key; that is
// harmless: all of them are published and every replica signs with the
// same newest one.
func (m *Manager) Init(ctx context.Context) error {
	if err := checkAlgorithm(m.opts.Algorithm); err != nil {
		return err
	}
	if err := m.Reload(ctx); err != nil {
		return err
	}
	if err := m.sealStored(ctx); err != nil {
		return err
	}
	now := m.opts.Now()
	if m.snap.Load().signing(now) != nil {
		return nil
	}
	k, err := Generate(m.opts.Algorithm)
	if err != nil {
		return err
	}
	rec, err := k.record(now, now)
	if err == nil {
		rec, err = sealRecord(m.opts.Sealer, rec)
	}
	if err != nil {
		return err
	}
	if err := m.store.CreateSigningKey(ctx, rec); err != nil {
		return fmt.Errorf("keys: store new key: %w", err)
	}
	m.opts.Logger.Info("created signing key", "kid", k.ID, "alg", rec.Algorithm)
	return m.Reload(ctx)
}

// Reload re-reads the keys from the store. On error the previous keys
// stay in use.
func (m *Manager) Reload(ctx context.Context) error {
	recs, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: list signing keys: %w", err)
	}
	old := m.snap.Load()
	now := m.opts.Now()
	next := &snapshot{byKID: make(map[string]*entry, len(recs))}
	for _, r := range recs {
		if expiredAt(r, now) {
			continue
		}
		var e entry
		if prev := old.byKID[r.ID]; prev != nil && bytes.Equal(prev.priv, r.Private) {
			e = *prev
		} else {
			k, err := m.parse(r)
			if err != nil {
				m.opts.Logger.Error("skipping unusable signing key", "kid", r.ID, "err", err)
				continue
			}
			e = entry{priv: bytes.Clone(r.Private), key: k, public: k.Public()}
		}
		e.rec = r
		e.rec.Private = nil
		next.entries = append(next.entries, &e)
		next.byKID[r.ID] = &e
	}
	slices.SortFunc(next.entries, func(a, b *entry) int { return newer(a.rec, b.rec) })
	m.snap.Store(next)

	before, after := old.signing(now), next.signing(now)
	switch {
	case after == nil:
		m.opts.Logger.Warn("no signing key is active")
	case before == nil || before.key.ID != after.key.ID:
		m.opts.Logger.Info("signing key in use", "kid", after.key.ID, "alg", after.key.Algorithm)
	}
	return nil
}

// Run reloads the keys every Options.Reload (and soon after a lookup of
// an unknown kid, at most every few seconds) until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.opts.Reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.kick:
		}
		if err := m.Reload(ctx); err != nil && ctx.Err() == nil {
			m.opts.Logger.Warn("reloading signing keys failed", "err", err)
		}
	}
}

// Signing returns the key to sign with now: the newest key active now
// and not retired. ErrNoSigningKey when there is none (before Init).
func (m *Manager) Signing() (SigningKey, error) {
	e := m.snap.Load().signing(m.opts.Now())
	if e == nil {
		return SigningKey{}, ErrNoSigningKey
	}
	return e.key, nil
}

// Lookup returns the public key with the given kid if it is trusted now
// (loaded and not past its ExpiresAt). It reads only the in-memory
// snapshot and does not allocate. The returned key must not be modified.
//
// A miss asks Run to reload early (rate-limited), so a key another
// replica just started signing with is learned quickly.
func (m *Manager) Lookup(kid string) (*jose.JSONWebKey, bool) {
	now := m.opts.Now()
	e := m.snap.Load().byKID[kid]
	if e == nil {
		m.requestReload(now)
		return nil, false
	}
	if expiredAt(e.rec, now) {
		return nil, false
	}
	return e.public, true
}

func (m *Manager) requestReload(now time.Time) {
	last := m.lastKick.Load()
	if now.UnixNano()-last < int64(minKickInterval) || !m.lastKick.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// PublicKeys returns the JWKS: the public half of every key not past its
// ExpiresAt (including keys published ahead of their ActiveFrom), newest
// first, each with kid, alg and use=sig.
func (m *Manager) PublicKeys() jose.JSONWebKeySet {
	now := m.opts.Now()
	s := m.snap.Load()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(s.entries))}
	for _, e := range s.entries {
		if !expiredAt(e.rec, now) {
			set.Keys = append(set.Keys, *e.public)
		}
	}
	return set
}

// Rotate creates a new key active from now (plus opts.Prepublish),
// retires every other key not yet retired (RetiredAt = the new key's
// ActiveFrom, ExpiresAt = RetiredAt + Overlap) and deletes keys whose
// ExpiresAt has passed. It works on the store alone: running Managers
// pick the change up on their next reload. It returns the new kid.
func Rotate(ctx context.Context, s Store, now time.Time, opts *Options) (newKID string, err error) {
	o := opts.withDefaults()
	k, err := Generate(o.Algorithm)
	if err != nil {
		return "", err
	}
	recs, err := s.ListSigningKeys(ctx)
	if err != nil {
		return "", fmt.Errorf("keys: list signing keys: %w", err)
	}
	activeFrom := now.Add(o.Prepublish)
	rec, err := k.record(now, activeFrom)
	if err == nil {
		rec, err = sealRecord(o.Sealer, rec)
	}
	if err != nil {
		return "", err
	}
	// Create first, so there is no moment without a signing key.
	if err := s.CreateSigningKey(ctx, rec); err != nil {
		return "", fmt.Errorf("keys: store new key: %w", err)
	}
	retire := func(r store.SigningKey) (store.SigningKey, error) {
		if r.RetiredAt.IsZero() || r.RetiredAt.After(activeFrom) {
			r.RetiredAt = activeFrom
		}
		if exp := r.RetiredAt.Add(o.Overlap); r.ExpiresAt.IsZero() || r.ExpiresAt.After(exp) {
			r.ExpiresAt = exp
		}
		return r, nil
	}
	var errs []error
	for _, r := range recs {
		switch {
		case expiredAt(r, now):
			if err := s.DeleteSigningKey(ctx, r.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, fmt.Errorf("keys: delete expired key %s: %w", r.ID, err))
			}
		case r.RetiredAt.IsZero() || r.RetiredAt.After(activeFrom):
			if err := s.UpdateSigningKey(ctx, r.ID, retire); err != nil && !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, fmt.Errorf("keys: retire key %s: %w", r.ID, err))
			}
		}
	}
	o.Logger.Info("rotated signing key", "kid", k.ID, "active_from", activeFrom)
	return k.ID, errors.Join(errs...)
}
