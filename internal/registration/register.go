package registration

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/store"
)

// Registration policies (Options.Policy).
const (
	// PolicyOpen: anyone may register; redirect URIs need only be safe
	// (https, loopback http, or a private-use scheme; see Allowlist).
	PolicyOpen = "open"
	// PolicyAllowlisted (the default): anyone may register, but every
	// redirect URI must match Options.Allowlist.
	PolicyAllowlisted = "allowlisted"
	// PolicyToken: the request must carry one of
	// Options.InitialAccessTokens as a bearer token (RFC 7591 §3);
	// redirect URIs need only be safe, as under PolicyOpen.
	PolicyToken = "token"
)

// DefaultMaxBodyBytes bounds a registration request body unless
// Options.MaxBodyBytes says otherwise: real registrations are a few hundred
// bytes.
const DefaultMaxBodyBytes = 16 << 10

// ClientStore is what the registration endpoint needs from storage.
type ClientStore interface {
	CreateClient(ctx context.Context, c store.Client) error
}

// Options configures a Handler. The zero value is PolicyAllowlisted with
// an empty allowlist, which refuses every redirect URI.
type Options struct {
	// Policy is PolicyOpen, PolicyAllowlisted (when "") or PolicyToken.
	Policy string
	// Allowlist restricts redirect URIs under PolicyAllowlisted.
	Allowlist Allowlist
	// InitialAccessTokens are the bearer tokens PolicyToken accepts.
	InitialAccessTokens []string
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// SecretTTL is the lifetime of issued client secrets; 0 = they never
	// expire (client_secret_expires_at 0, RFC 7591 §3.2.1).
	SecretTTL time.Duration
	// MaxBodyBytes bounds a request body; default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// PerAddressPerMinute and GlobalPerMinute bound how many clients may
	// register per minute from one address (IPv6: one /64) and from
	// everyone; defaults DefaultPerAddressPerMinute, DefaultGlobalPerMinute.
	PerAddressPerMinute, GlobalPerMinute int
	// ClientAddr says who is asking (for the per-address limit); default
	// RemoteAddr. Behind a reverse proxy, give one that trusts its
	// X-Forwarded-For.
	ClientAddr func(*http.Request) string
}

// Handler is the Dynamic Client Registration endpoint (RFC 7591).
type Handler struct {
	store      ClientStore
	policy     string
	allowlist  Allowlist
	tokens     [][sha256.Size]byte
	now        func() time.Time
	log        *slog.Logger
	secretTTL  time.Duration
	maxBody    int64
	limit      *limiter
	clientAddr func(*http.Request) string
}

// New returns a registration endpoint storing clients in s. opts may be
// nil (the defaults of Options).
func New(s ClientStore, opts *Options) (*Handler, error) {
	if s == nil {
		return nil, errors.New("registration: nil store")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	h := &Handler{store: s, policy: o.Policy, allowlist: o.Allowlist, now: o.Now, log: o.Logger, secretTTL: o.SecretTTL,
		maxBody: o.MaxBodyBytes, limit: newLimiter(o.PerAddressPerMinute, o.GlobalPerMinute), clientAddr: o.ClientAddr}
	if h.policy == "" {
		h.policy = PolicyAllowlisted
	}
	switch h.policy {
	case PolicyOpen, PolicyAllowlisted:
	case PolicyToken:
		for _, t := range o.InitialAccessTokens {
			if t == "" {
				return nil, errors.New("registration: empty initial access token")
			}
			h.tokens = append(h.tokens, sha256.Sum256([]byte(t)))
		}
		if len(h.tokens) == 0 {
			return nil, errors.New("registration: policy \"token\" needs at least one initial access token")
		}
	default:
		return nil, fmt.Errorf("registration: unknown policy %q (want open, allowlisted or token)", h.policy)
	}
	if h.secretTTL < 0 {
		return nil, errors.New("registration: negative SecretTTL")
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.clientAddr == nil {
		h.clientAddr = RemoteAddr
	}
	return h, nil
}

// Mount registers POST /register on mux.
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.Handle("POST /register", h)
}

// ServeHTTP handles one client registration request (RFC 7591 §3.1):
// serve answers it or returns its error, which oauth.Fail renders
// (RFC 7591 §3.2.2; neither answer may be cached) and logs.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	oauth.Handle(h.log, h.serve).ServeHTTP(w, r)
}

// serve registers one client and writes the response (RFC 7591 §3.2.1).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	fields, oerr := h.register(w, r)
	if oerr != nil {
		return fmt.Errorf("client registration refused: %w", oerr)
	}
	oauth.WriteJSON(w, http.StatusCreated, fields)
	return nil
}

// register validates and stores one registration and returns the
// response members. w is only for bounding the body.
func (h *Handler) register(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, *oauth.Error) {
	if r.Method != http.MethodPost {
		return nil, &oauth.Error{Code: oauth.InvalidRequest, Description: "use POST", Status: http.StatusMethodNotAllowed, Allow: []string{http.MethodPost}}
	}
	if ok, wait := h.limit.allow(addrKey(h.clientAddr(r)), h.now()); !ok {
		return nil, &oauth.Error{Code: oauth.TemporarilyUnavailable, Description: "too many registrations; try again later",
			Status: http.StatusTooManyRequests, RetryAfter: max(wait, time.Second)}
	}
	if h.policy == PolicyToken {
		if ok, desc := h.checkToken(r); !ok {
			// RFC 6750 §3: a missing token gets a bare challenge, a wrong
			// one error="invalid_token"; both 401.
			challenge := "Bearer"
			if desc != "" {
				challenge = `Bearer error="invalid_token"`
			} else {
				desc = "an initial access token is required"
			}
			return nil, &oauth.Error{Code: oauth.InvalidToken, Description: desc, Status: http.StatusUnauthorized, Challenge: challenge}
		}
	}
	fields, oerr := h.readBody(w, r)
	if oerr != nil {
		return nil, oerr
	}
	md, oerr := parseMetadata(fields, h.rules())
	if oerr != nil {
		return nil, oerr
	}
	if oerr := h.store1(r.Context(), md, fields); oerr != nil {
		return nil, oerr
	}
	return fields, nil
}

// readBody reads the JSON body (RFC 7591 §3.1: application/json; which
// also means a cross-site HTML form or "simple" fetch cannot register),
// bounded in size, and drops the members only the server assigns
// (RFC 7591 §3.2.1) and a software statement, which this server does not
// verify and so may ignore (RFC 7591 §3.1.1) but must not echo.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, *oauth.Error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, badMeta("the request must be application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			return nil, &oauth.Error{Code: oauth.InvalidClientMetadata, Status: http.StatusRequestEntityTooLarge,
				Description: fmt.Sprintf("the request body exceeds %d bytes", h.maxBody)}
		}
		return nil, badMeta("could not read the request body")
	}
	fields, err := decodeObject(body)
	if err != nil {
		return nil, badMeta("%v", err)
	}
	for _, k := range []string{"client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at",
		"registration_access_token", "registration_client_uri", "software_statement"} {
		delete(fields, k)
	}
	return fields, nil
}

// store1 stores the client md describes and completes fields with what
// the server assigned (client_id, the secret once, the dates).
func (h *Handler) store1(ctx context.Context, md *metadata, fields map[string]json.RawMessage) *oauth.Error {
	now := h.now().UTC().Truncate(time.Second)
	c := store.Client{
		Name:                    md.name,
		Kind:                    store.ClientDynamic,
		RedirectURIs:            md.redirectURIs,
		GrantTypes:              md.grantTypes,
		ResponseTypes:           md.responseTypes,
		TokenEndpointAuthMethod: md.authMethod,
		Scope:                   md.scope,
		JWKS:                    md.jwks,
		JWKSURI:                 md.jwksURI,
		CreatedAt:               now,
		UpdatedAt:               now,
	}
	var secret string
	if md.authMethod == authClientSecretBasic || md.authMethod == authClientSecretPost {
		secret = randomString(32) // 256 bits
		sum := sha256.Sum256([]byte(secret))
		c.SecretHash = hex.EncodeToString(sum[:])
		expiresAt := int64(0)
		if h.secretTTL > 0 {
			c.SecretExpiresAt = now.Add(h.secretTTL)
			expiresAt = c.SecretExpiresAt.Unix()
		}
		setJSON(fields, "client_secret_expires_at", expiresAt)
	}
	setJSON(fields, "client_id_issued_at", now.Unix())

	// A random 128-bit id collides only in theory; retry all the same.
	var err error
	for attempt := 0; ; attempt++ {
		c.ID = randomString(16)
		setJSON(fields, "client_id", c.ID)
		c.Metadata, _ = json.Marshal(fields) // without the secret: it is never stored
		err = h.store.CreateClient(ctx, c)
		if !errors.Is(err, store.ErrAlreadyExists) || attempt == 2 {
			break
		}
	}
	if err != nil {
		return &oauth.Error{Code: oauth.ServerError, Description: "the client could not be registered", Status: http.StatusInternalServerError, Cause: err}
	}
	if secret != "" {
		setJSON(fields, "client_secret", secret) // returned once, here
	}
	h.log.Info("client registered", "client_id", c.ID, "client_name", c.Name,
		"auth_method", c.TokenEndpointAuthMethod, "policy", h.policy)
	return nil
}

func (h *Handler) rules() metadataRules {
	r := metadataRules{
		// RFC 7591 §2: client_secret_basic is the default when absent.
		defaultAuthMethod: authClientSecretBasic,
		authMethods:       []string{authNone, authClientSecretBasic, authClientSecretPost, authPrivateKeyJWT},
		redirectURI:       checkRedirectURI,
	}
	if h.policy == PolicyAllowlisted {
		r.redirectURI = func(u string) error {
			if err := checkRedirectURI(u); err != nil {
				return err
			}
			if !h.allowlist.Allows(u) {
				return errors.New("not allowed by this server's redirect URI policy")
			}
			return nil
		}
	}
	return r
}

// checkToken checks the initial access token (RFC 7591 §3, sent as an
// RFC 6750 §2.1 bearer token). It compares SHA-256 digests in constant
// time against every configured token, so neither the match position nor
// the token lengths leak through timing. desc is "" when no token was
// sent at all.
func (h *Handler) checkToken(r *http.Request) (ok bool, desc string) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return false, ""
	}
	if len(r.Header.Values("Authorization")) > 1 {
		// One reading: which of several would a proxy in front have read?
		return false, "send one Authorization header"
	}
	scheme, tok, found := strings.Cut(auth, " ")
	tok = strings.TrimLeft(tok, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return false, "the Authorization header must be \"Bearer <initial access token>\""
	}
	sum := sha256.Sum256([]byte(tok))
	match := 0
	for _, t := range h.tokens {
		match |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	if match != 1 {
		return false, "the initial access token is not valid"
	}
	return true, ""
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}
