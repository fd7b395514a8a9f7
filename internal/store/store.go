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
	Disabled     bool
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

	// DeleteExpired removes codes and refresh tokens past their expiry
	// and returns how many rows went (a background job calls it).
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
	Close() error
}
