// Package store is mcpgate's storage contract: the value types the
// authorization server keeps (clients, users, authorization codes, refresh
// tokens, consents, signing keys), the vault's connections (downstream
// credentials, sealed by internal/vault) and its check value, sentinel
// errors, and the Store interface every backend implements.
//
// Backends live next door: store/sqlstore holds the one SQL implementation,
// opened by store/sqlite (the embedded default) or store/postgres (for
// several replicas), each contributing its dialect; store/storetest is the
// one test suite both must pass. Updates are by function (UpdateX(ctx, id, func(old)
// (new, error))) and atomic per backend, so read-modify-write races cannot
// lose a change. Secrets are stored as hashes or encrypted by the caller;
// a backend never sees a bearer secret in the clear.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap them; callers test with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	// ErrAlreadyUsed: a single-use value (authorization code) was presented
	// again, or a refresh token that was already rotated (reuse).
	ErrAlreadyUsed = errors.New("already used")
	// ErrRevoked: the token or its family was revoked.
	ErrRevoked = errors.New("revoked")
	// ErrExpired: the value exists but its lifetime is over.
	ErrExpired = errors.New("expired")
)

// Client kinds.
const (
	ClientStatic   = "static"   // from the config file
	ClientDynamic  = "dynamic"  // registered via RFC 7591
	ClientMetadata = "metadata" // a client ID metadata document (its id is an https URL)
)

// Client is an OAuth client.
type Client struct {
	ID string
	// SecretHash is the hex SHA-256 of the client secret (secrets are
	// 256-bit random values, so a fast hash is right); "" for public clients.
	SecretHash string
	// SecretExpiresAt is zero when the secret never expires.
	SecretExpiresAt time.Time
	Name            string
	Kind            string
	RedirectURIs    []string
	GrantTypes      []string
	ResponseTypes   []string
	// TokenEndpointAuthMethod: none, client_secret_basic,
	// client_secret_post or private_key_jwt.
	TokenEndpointAuthMethod string
	Scope                   string
	JWKS                    json.RawMessage // for private_key_jwt, inline
	JWKSURI                 string          // or by reference
	// Group lets policies address families of agents (issue 4); "" = none.
	Group string
	// Metadata is the registration metadata as the client sent it, echoed
	// back by the registration endpoint (RFC 7591 §3.2.1).
	Metadata  json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
}

// User is a person who signs in: from the built-in directory or, later,
// an upstream identity provider.
type User struct {
	ID           string // the stable subject ("sub")
	Username     string // unique; the built-in login name
	Email        string
	PasswordHash string // bcrypt ($2a$/$2b$) or argon2id (PHC string); "" = cannot log in with a password
	Tenant       string
	Groups       []string
	Roles        []string
	Permissions  []string
	// Disabled: the config says so (declared users). An admin's disable
	// is kept in the access state (AccessDisabledUser) instead, so it holds
	// for declared users and survives restarts; readers see both through
	// store/layered.
	Disabled bool
	// Source names where the user record comes from: "config", "cli", or
	// an identity provider's name.
	Source string
	// UpstreamToken is the identity provider's refresh token, sealed by
	// the caller (never stored in the clear); "" for built-in users. It
	// lets refreshes ask the provider whether the user is still accepted.
	UpstreamToken string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// AuthCode is an issued authorization code (RFC 6749 §4.1.2), stored by
// the SHA-256 of the code.
type AuthCode struct {
	CodeHash      string
	ClientID      string
	UserID        string
	RedirectURI   string
	CodeChallenge string // PKCE S256 challenge (RFC 7636)
	Resource      string // RFC 8707 resource indicator (one per grant here)
	Scope         string
	// GrantID names everything this code leads to (the refresh-token
	// family); replaying the code revokes that family (OAuth 2.1 §4.1.3).
	GrantID   string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until redeemed
}

// RefreshToken is one refresh token of a family; rotation creates the
// next and marks the old one rotated.
type RefreshToken struct {
	TokenHash string
	FamilyID  string // the grant: all tokens descended from one authorization
	ClientID  string
	UserID    string
	Resource  string
	Scope     string
	CreatedAt time.Time
	ExpiresAt time.Time
	RotatedAt time.Time // zero while it is the current token of its family
	RevokedAt time.Time // zero unless revoked
}

// Consent records what a user allowed a client, remembered until revoked.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	Resources []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SigningKey is a token-signing key pair. Private is the private JWK in
// JSON (the caller may encrypt it before storing).
type SigningKey struct {
	ID        string // the JWK "kid"
	Algorithm string // e.g. ES256
	Private   []byte
	CreatedAt time.Time
	// ActiveFrom is when it starts signing; publishing it earlier lets
	// verifiers cache it before first use (rotation with overlap).
	ActiveFrom time.Time
	// RetiredAt: stops signing; stays published until tokens it signed
	// have expired. Zero while not retired.
	RetiredAt time.Time
	// ExpiresAt: no longer published or trusted after this. Zero = never.
	ExpiresAt time.Time
}

// Connection kinds.
const (
	ConnectionOAuth2 = "oauth2"  // a downstream OAuth 2.0 grant (access + refresh token)
	ConnectionAPIKey = "api_key" // an API key the user (or an admin) entered
	ConnectionStatic = "static"  // a credential from the config file
)

// Connection is a downstream credential kept in the vault (internal/vault):
// one user's (or, with UserID "", a whole tenant's) credential for one
// connection of the config. It is keyed by (UserID, Tenant, Name).
type Connection struct {
	UserID string // "" for a tenant-wide credential
	Tenant string
	Name   string // the connection's name in the config, e.g. "calendar-api"
	Kind   string // ConnectionOAuth2, ConnectionAPIKey or ConnectionStatic
	// Secret is the credential sealed by the vault (bound to the key
	// fields); never plaintext. Backends store it as opaque bytes.
	Secret []byte
	KeyID  string // the vault key that sealed Secret
	Scopes []string
	// ExpiresAt is when the access token expires; zero = never (or
	// unknown). The row stays: a refresh replaces the secret.
	ExpiresAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// GrantRevocation records that a user's grant to a client (ClientID "" = every
// client) was revoked at RevokedAt: access tokens issued to that user (and
// client) before then are refused at once. Every replica reads them
// (ListGrantRevocations), so a revocation cuts access everywhere without
// waiting for access tokens to expire. They are keyed by (UserID, ClientID).
type GrantRevocation struct {
	UserID   string
	ClientID string // "" = every client of the user
	// RevokedAt: tokens issued before it are refused. Zero on Put means now.
	RevokedAt time.Time
}

// Kinds of AccessEntry: the facts internal/access keeps about who is cut
// off, and the config entries it last saw declared.
const (
	// AccessRevokedToken: an access token (ID = its jti) revoked before
	// its expiry (RFC 7009); kept until the token would have expired.
	AccessRevokedToken = "token"
	// AccessRevokedGrant: a grant (ID = the authorization's grant id, the
	// refresh-token family) whose access tokens are refused, e.g. after a
	// replayed authorization code (OAuth 2.1 §4.1.3).
	AccessRevokedGrant = "grant"
	// AccessRemovedClient: a client (ID = client id) whose tokens issued
	// before At are refused (it left the config, or was deleted).
	AccessRemovedClient = "client"
	// AccessDisabledUser: a user (ID = subject) an admin disabled; no
	// expiry, deleted when the user is enabled again.
	AccessDisabledUser = "disabled_user"
	// AccessUsedAssertion: a private_key_jwt assertion (ID = client id,
	// space, jti) already presented (RFC 7523 §3 item 7); kept until it
	// expires.
	AccessUsedAssertion = "assertion"
	// AccessConfigUser and AccessConfigClient: the users and clients the
	// config declared at the last start, so the next start can tell which
	// ones the operator removed.
	AccessConfigUser   = "config_user"
	AccessConfigClient = "config_client"
)

// AccessEntry is one fact of access state, keyed by (Kind, ID).
type AccessEntry struct {
	Kind string
	ID   string
	// At is when it happened (for AccessRemovedClient: tokens issued
	// before it are refused). Zero on Put means now.
	At time.Time
	// ExpiresAt is when the entry stops mattering; zero = never.
	ExpiresAt time.Time
}

// AccessStore is the part of Store internal/access reads and writes.
type AccessStore interface {
	// PutAccessEntry creates or updates an entry (Kind and ID must not be
	// empty): an existing one keeps the later At and the later ExpiresAt
	// (zero, never, being the latest).
	PutAccessEntry(ctx context.Context, e AccessEntry) error
	// AddAccessEntry creates an entry unless one of the same key exists
	// and has not expired at now, which is ErrAlreadyExists (single use:
	// replay caches). An expired one is replaced.
	AddAccessEntry(ctx context.Context, e AccessEntry, now time.Time) error
	// DeleteAccessEntry removes an entry; ErrNotFound when there is none.
	DeleteAccessEntry(ctx context.Context, kind, id string) error
	// ListAccessEntries returns the entries of a kind not expired at now
	// (zero now: all of them), by ID.
	ListAccessEntries(ctx context.Context, kind string, now time.Time) ([]AccessEntry, error)
	// DeleteExpiredAccessEntries removes the entries expired at now and
	// counts them.
	DeleteExpiredAccessEntries(ctx context.Context, now time.Time) (int, error)
}

// SealedSecret is a secret the gateway generates once and keeps across
// restarts and replicas (the session key), sealed by internal/vault: the
// store sees only ciphertext. KeyID names the vault key that sealed Value.
type SealedSecret struct {
	Name      string
	KeyID     string
	Value     []byte
	CreatedAt time.Time // zero on Create: now
	UpdatedAt time.Time // zero on Create or Update: now
}

// Store is the storage contract. Every method is safe for concurrent use
// and every Update runs its function inside one atomic transaction (the
// function may run more than once on a retry; it must be pure). While it
// runs the row is locked: no other Update of that row runs its function
// meanwhile (callers rely on it, e.g. to refresh a downstream token once).
type Store interface {
	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	UpdateClient(ctx context.Context, id string, update func(Client) (Client, error)) error
	DeleteClient(ctx context.Context, id string) error
	ListClients(ctx context.Context) ([]Client, error)

	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	GetUserByUsername(ctx context.Context, username string) (User, error)
	UpdateUser(ctx context.Context, id string, update func(User) (User, error)) error
	DeleteUser(ctx context.Context, id string) error
	ListUsers(ctx context.Context) ([]User, error)

	CreateAuthCode(ctx context.Context, c AuthCode) error
	// ConsumeAuthCode marks the code used and returns it. A code already
	// used returns the stored record with ErrAlreadyUsed (so the caller can
	// revoke its grant); an expired one ErrExpired; unknown ErrNotFound.
	ConsumeAuthCode(ctx context.Context, codeHash string, now time.Time) (AuthCode, error)

	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	GetRefreshToken(ctx context.Context, tokenHash string) (RefreshToken, error)
	// RotateRefreshToken atomically marks oldHash rotated and stores next
	// (same family). If oldHash was already rotated it revokes the whole
	// family and returns ErrAlreadyUsed (refresh-token reuse, OAuth 2.1
	// §4.3.1); revoked: ErrRevoked; expired: ErrExpired.
	RotateRefreshToken(ctx context.Context, oldHash string, next RefreshToken, now time.Time) (RefreshToken, error)
	// RevokeRefreshFamily revokes every token of a family.
	RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) error
	// RevokeRefreshTokens revokes every token of a user for a client
	// (clientID "" = all clients), returning how many were revoked.
	RevokeRefreshTokens(ctx context.Context, userID, clientID string, now time.Time) (int, error)

	GetConsent(ctx context.Context, userID, clientID string) (Consent, error)
	PutConsent(ctx context.Context, c Consent) error
	DeleteConsent(ctx context.Context, userID, clientID string) error
	ListConsents(ctx context.Context, userID string) ([]Consent, error)

	CreateSigningKey(ctx context.Context, k SigningKey) error
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	UpdateSigningKey(ctx context.Context, id string, update func(SigningKey) (SigningKey, error)) error
	DeleteSigningKey(ctx context.Context, id string) error

	// PutConnection creates or replaces a connection (Name must not be
	// empty); a replaced one keeps its CreatedAt.
	PutConnection(ctx context.Context, c Connection) error
	GetConnection(ctx context.Context, userID, tenant, name string) (Connection, error)
	// UpdateConnection changes a connection atomically; on PostgreSQL the
	// row stays locked (SELECT … FOR UPDATE) while update runs, so replicas
	// refreshing one downstream credential queue behind each other. The
	// function may not change the key fields.
	UpdateConnection(ctx context.Context, userID, tenant, name string, update func(Connection) (Connection, error)) error
	DeleteConnection(ctx context.Context, userID, tenant, name string) error
	// ListConnections returns a user's connections (userID "": the
	// tenant-wide ones), by tenant then name.
	ListConnections(ctx context.Context, userID string) ([]Connection, error)
	// ListAllConnections returns every connection, by user, tenant, name
	// (for vault key rotation).
	ListAllConnections(ctx context.Context) ([]Connection, error)
	// DeleteUserConnections deletes every connection of a user (when the
	// user is removed) and counts them. userID "" is an error: tenant-wide
	// credentials belong to no user.
	DeleteUserConnections(ctx context.Context, userID string) (int, error)

	// GetVaultCheck returns the vault's check value (a known plaintext
	// sealed with the key named keyID), ErrNotFound before the first
	// start; PutVaultCheck creates or replaces it. The vault reads it at
	// start-up so that a wrong key fails loudly instead of corrupting data.
	GetVaultCheck(ctx context.Context) (keyID string, check []byte, err error)
	PutVaultCheck(ctx context.Context, keyID string, check []byte) error

	// PutGrantRevocation records a revocation (UserID must not be empty),
	// upserting by (UserID, ClientID): the row keeps the latest RevokedAt,
	// so an older revocation arriving late changes nothing.
	PutGrantRevocation(ctx context.Context, r GrantRevocation) error
	// ListGrantRevocations returns the revocations with RevokedAt >= since
	// (zero since: all of them), ordered by RevokedAt, then UserID, ClientID.
	ListGrantRevocations(ctx context.Context, since time.Time) ([]GrantRevocation, error)
	// DeleteGrantRevocationsBefore removes the revocations with RevokedAt <
	// before and counts them: housekeeping once no access token can predate
	// them (before = now - the longest access-token lifetime).
	DeleteGrantRevocationsBefore(ctx context.Context, before time.Time) (int, error)

	AccessStore
	// CreateSealedSecret stores a new secret (ErrAlreadyExists when the
	// name is taken: another replica won the race, read theirs);
	// GetSealedSecret reads one (ErrNotFound); UpdateSealedSecret changes
	// one atomically (re-sealing after a vault key rotation) and may not
	// change its name.
	CreateSealedSecret(ctx context.Context, s SealedSecret) error
	GetSealedSecret(ctx context.Context, name string) (SealedSecret, error)
	UpdateSealedSecret(ctx context.Context, name string, update func(SealedSecret) (SealedSecret, error)) error

	// DeleteExpired removes codes and refresh tokens past their expiry
	// and returns how many rows went (a background job calls it).
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
	Close() error
}
