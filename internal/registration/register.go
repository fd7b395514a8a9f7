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

// MaxBodyBytes bounds a registration request body.
const MaxBodyBytes = 64 << 10

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
}

// Handler is the Dynamic Client Registration endpoint (RFC 7591).
type Handler struct {
	store     ClientStore
	policy    string
	allowlist Allowlist
	tokens    [][sha256.Size]byte
	now       func() time.Time
	log       *slog.Logger
	secretTTL time.Duration
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
	h := &Handler{store: s, policy: o.Policy, allowlist: o.Allowlist, now: o.Now, log: o.Logger, secretTTL: o.SecretTTL}
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
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// Mount registers POST /register on mux.
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.Handle("POST /register", h)
}

// ServeHTTP handles one client registration request (RFC 7591 §3.1).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, codeInvalidClientMetadata, "use POST")
		return
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
			w.Header().Set("WWW-Authenticate", challenge)
			writeError(w, http.StatusUnauthorized, "invalid_token", desc)
			return
		}
	}
	// RFC 7591 §3.1: the body is application/json. Insisting on it also
	// means a cross-site HTML form or "simple" fetch cannot register.
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusBadRequest, codeInvalidClientMetadata, "the request must be application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, codeInvalidClientMetadata, fmt.Sprintf("the request body exceeds %d bytes", MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, codeInvalidClientMetadata, "could not read the request body")
		return
	}
	fields, err := decodeObject(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidClientMetadata, err.Error())
		return
	}
	// Values only the server assigns (RFC 7591 §3.2.1) are dropped, as is
	// a software statement, which this server does not verify and so may
	// ignore (RFC 7591 §3.1.1) but must not echo as if it had.
	for _, k := range []string{"client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at",
		"registration_access_token", "registration_client_uri", "software_statement"} {
		delete(fields, k)
	}
	md, merr := parseMetadata(fields, h.rules())
	if merr != nil {
		h.log.Debug("client registration refused", "error", merr.code, "description", merr.desc)
		writeError(w, http.StatusBadRequest, merr.code, merr.desc)
		return
	}

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
	for attempt := 0; ; attempt++ {
		c.ID = randomString(16)
		setJSON(fields, "client_id", c.ID)
		c.Metadata, _ = json.Marshal(fields) // without the secret: it is never stored
		err = h.store.CreateClient(r.Context(), c)
		if !errors.Is(err, store.ErrAlreadyExists) || attempt == 2 {
			break
		}
	}
	if err != nil {
		h.log.Error("storing a registered client", "error", err)
		writeError(w, http.StatusInternalServerError, "server_error", "the client could not be registered")
		return
	}
	if secret != "" {
		setJSON(fields, "client_secret", secret) // returned once, here
	}
	h.log.Info("client registered", "client_id", c.ID, "client_name", c.Name,
		"auth_method", c.TokenEndpointAuthMethod, "policy", h.policy)
	writeJSON(w, http.StatusCreated, fields)
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

func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// writeJSON writes a registration response; both success and error
// responses must not be cached (RFC 7591 §3.2.1, §3.2.2).
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
