// Package authflow is the front-channel half of the authorization server:
// /oauth/authorize (OAuth 2.1 authorization code with PKCE S256 and RFC
// 8707 resource indicators), the sign-in and consent forms, and the code
// it finally hands back. The back channel (/oauth/token) is in grants.
//
// The pending request travels sealed in the forms, and the signed-in user
// in a sealed cookie, so any replica can continue any flow.
package authflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/access"
	"github.com/mcpgate/mcpgate/internal/idp"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/registration"
	"github.com/mcpgate/mcpgate/internal/seal"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/internal/web"
)

// Store is what the flow needs from storage.
type Store interface {
	GetUser(ctx context.Context, id string) (store.User, error)
	GetConsent(ctx context.Context, userID, clientID string) (store.Consent, error)
	PutConsent(ctx context.Context, c store.Consent) error
	CreateAuthCode(ctx context.Context, c store.AuthCode) error
}

// Options configures the handler.
type Options struct {
	Issuer    string // the issuer URL, sent back as iss (RFC 9207)
	Resources oauth.Resources
	Clients   oauth.Clients
	Granter   oauth.Granter // nil: oauth.OpenGranter
	Store     Store
	Directory *idp.Directory
	// Federation signs users in through their tenant's IdP; nil: built-in
	// users only.
	Federation *Federation
	// Secret derives the keys sealing requests, cookies and CSRF tokens;
	// replicas must share it. Empty: random per process.
	Secret []byte
	// SecureCookies: __Host- cookies with Secure (HTTPS deployments).
	SecureCookies bool
	CodeTTL       time.Duration // default 1m
	SessionTTL    time.Duration // sign-in lifetime, default 8h
	// Connections lists the downstream connections a resource's tools use
	// for this user, for the consent page to offer; nil: none.
	Connections func(ctx context.Context, user store.User, resource string) []web.ConnectionLine
	// ScopeText describes scopes in words on the consent page.
	ScopeText func(resource *oauth.Resource, scope string) string
	Logger    *slog.Logger
	Now       func() time.Time
	// Access is the cut-off predicate; a sign-in it refuses (one made
	// before the user was disabled or their grants revoked) is none.
	// nil: the store's Disabled flag only.
	Access interface {
		Check(ctx context.Context, s access.Subject) error
	}
}

// Handler serves the authorization endpoint and its pages.
type Handler struct {
	o         Options
	log       *slog.Logger
	requests  *seal.Box
	sessions  *seal.Box
	fedStates *seal.Box
	csrf      *web.CSRF
}

// New builds the handler.
func New(o Options) (*Handler, error) {
	if o.CodeTTL <= 0 {
		o.CodeTTL = time.Minute
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 8 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Granter == nil {
		o.Granter = oauth.OpenGranter{}
	}
	if len(o.Secret) == 0 {
		o.Secret = []byte(randomSecret())
	}
	req, err := seal.New(o.Secret, "authorization request")
	if err != nil {
		return nil, err
	}
	sess, err := seal.New(o.Secret, "sign-in session")
	if err != nil {
		return nil, err
	}
	fed, err := seal.New(o.Secret, "federated sign-in state")
	if err != nil {
		return nil, err
	}
	csrfKey := append([]byte("csrf:"), o.Secret...)
	return &Handler{o: o, log: o.Logger, requests: req, sessions: sess, fedStates: fed, csrf: web.NewCSRF(csrfKey, o.SecureCookies)}, nil
}

// Mount registers the routes.
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.Handle("GET /oauth/authorize", h.handle(h.authorize))
	mux.Handle("POST /oauth/authorize", h.handle(h.authorize)) // RFC 6749 §3.1: POST may be supported
	mux.Handle("POST /oauth/login", h.handle(h.login))
	mux.Handle("POST /oauth/consent", h.handle(h.consent))
	mux.Handle("GET /oauth/callback/{provider}", h.handle(h.callback))
	mux.Handle("GET /oauth/signin", h.handle(h.signinPage))
}

// handle adapts a page handler that returns its error. An error for the
// client (*clientError, made only from a request whose redirect URI was
// validated) goes back to it as a redirect; every other error is a page,
// rendered by web.Fail. Either way it is logged once, here.
func (h *Handler) handle(fn web.PageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := fn(w, r)
		if web.IsNil(err) {
			return
		}
		if ce, ok := errors.AsType[*clientError](err); ok && ce != nil {
			h.redirectError(w, r, ce)
			level := slog.LevelInfo
			if ce.code == oauth.ServerError {
				level = slog.LevelError
			}
			h.log.Log(r.Context(), level, "authorization refused to the client", "path", r.URL.Path, "err", err)
			return
		}
		web.Fail(w, r, h.log, err)
	})
}

// request is a validated authorization request, sealed into the forms.
type request struct {
	ClientID      string   `json:"c"`
	ClientName    string   `json:"cn,omitempty"`
	RedirectURI   string   `json:"r"`
	State         string   `json:"s,omitempty"`
	CodeChallenge string   `json:"p"`
	Resource      string   `json:"a"`
	Scopes        []string `json:"sc,omitempty"` // requested; once Decided, granted
	Decided       bool     `json:"g,omitempty"`  // Scopes went through policy
	Dynamic       bool     `json:"d,omitempty"`  // the client's name is self-asserted
	// Return is where a sign-in without an authorization request goes
	// afterwards (a local path such as /connections).
	Return string `json:"ret,omitempty"`
}

// signIn is the sealed sign-in cookie.
type signIn struct {
	UserID   string `json:"u"`
	AuthTime int64  `json:"t"`
	// At is AuthTime in nanoseconds: a cut-off in the same second as a
	// sign-in must tell which came first.
	At int64 `json:"n,omitempty"`
}

// signedInAt is when the sign-in happened (AuthTime, for a cookie sealed
// before At existed).
func (si signIn) signedInAt() time.Time {
	if si.At != 0 {
		return time.Unix(0, si.At)
	}
	return time.Unix(si.AuthTime, 0)
}

const requestTTL = 15 * time.Minute

func (h *Handler) cookieName() string {
	if h.o.SecureCookies {
		return "__Host-mcpgate_session"
	}
	return "mcpgate_session"
}

// authorize validates the request (RFC 6749 §4.1.1 with OAuth 2.1 and the
// MCP authorization profile), then signs the user in and asks consent.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return &web.PageError{Status: http.StatusBadRequest, Title: "Invalid request", Message: "The authorization request could not be read."}
	}
	q := r.Form
	// RFC 6749 §3.1: no parameter twice. Shown here, not redirected: a
	// repeated redirect_uri or client_id leaves the redirect untrusted.
	if name := oauth.RepeatedParameter(q, "resource"); name != "" {
		return &web.PageError{Status: http.StatusBadRequest, Title: "Invalid request",
			Message: "The authorization request repeats the parameter " + name + "."}
	}
	// Errors about the client or its redirect URI are shown here, never
	// redirected (RFC 6749 §4.1.2.1): the redirect URI is not trusted yet.
	clientID := q.Get("client_id")
	if clientID == "" {
		return &web.PageError{Status: http.StatusBadRequest, Title: "Invalid request", Message: "The application did not say who it is (client_id is missing)."}
	}
	client, err := h.o.Clients.Client(r.Context(), clientID)
	if err != nil {
		return fmt.Errorf("authorize: unknown client %q (%v): %w", clientID, err, &web.PageError{Status: http.StatusBadRequest,
			Title: "Unknown application", Message: "This application is not registered (or its registration expired). Ask it to register again."})
	}
	redirectURI, ok := matchRedirect(client.RedirectURIs, q.Get("redirect_uri"))
	if !ok {
		return &web.PageError{Status: http.StatusBadRequest, Title: "Invalid redirect",
			Message: "The application asked to return to an address it did not register."}
	}
	resourceURI := q.Get("resource")
	res := h.o.Resources.Lookup(resourceURI)
	if resourceURI == "" {
		// Codex and clients of protocol revisions before 2025-06-18 omit
		// the resource: take the one this client may use, if only one.
		res = defaultResource(h.o.Resources, redirectURI)
	}
	if res != nil && res.AllowsRedirect != nil && !res.AllowsRedirect(redirectURI) {
		return &web.PageError{Status: http.StatusBadRequest, Title: "Application not allowed",
			Message: "This application's return address is not on the allowlist of " + res.ServerName + "."}
	}
	// From here on the redirect URI is validated: errors go back to it.
	back := request{RedirectURI: redirectURI, State: q.Get("state")}.fail
	switch {
	case q.Get("response_type") != "code":
		return back(oauth.UnsupportedResponseType, "only response_type=code is supported")
	case q.Get("code_challenge") == "":
		return back(oauth.InvalidRequest, "PKCE is required: send code_challenge with code_challenge_method=S256")
	case q.Get("code_challenge_method") != "S256":
		return back(oauth.InvalidRequest, "code_challenge_method must be S256")
	case !validChallenge(q.Get("code_challenge")):
		return back(oauth.InvalidRequest, "code_challenge must be a base64url SHA-256 (43 characters)")
	case len(q["resource"]) > 1:
		// RFC 8707 §2 allows several; a token here has one audience.
		return back(oauth.InvalidTarget, "one resource per authorization")
	case res == nil && resourceURI == "":
		return back(oauth.InvalidTarget, missingResource(h.o.Issuer))
	case res == nil:
		return back(oauth.InvalidTarget, "resource must name a protected MCP server of this gateway: send resource=<the server's URL>, as in the \"resource\" of its protected resource metadata, e.g. "+h.o.Issuer+"/mcp/<server>")
	case !slices.Contains(client.GrantTypes, "authorization_code") && len(client.GrantTypes) > 0:
		return back(oauth.UnauthorizedClient, "this client may not use the authorization code grant")
	}
	requested := oauth.WithoutOfflineAccess(oauth.ParseScope(q.Get("scope")))
	if allowed := oauth.ParseScope(client.Scope); len(allowed) > 0 && len(requested) == 0 {
		requested = allowed
	}
	if len(requested) > 0 && len(res.Grantable(requested)) == 0 && len(res.Scopes) > 0 {
		return back(oauth.InvalidScope, "none of the requested scopes is available on "+res.ServerName)
	}
	// Scopes are decided once we know who signs in (policies look at the
	// user): Scopes holds the request until then.
	req := request{ClientID: client.ID, ClientName: displayName(client), RedirectURI: redirectURI, State: q.Get("state"),
		CodeChallenge: q.Get("code_challenge"), Resource: res.URI, Scopes: requested, Dynamic: client.Kind != store.ClientStatic}
	if q.Get("prompt") == "none" {
		// Without interaction we can only succeed silently or fail.
		if user, ok := h.currentUser(r); ok {
			if err := h.decide(r, user, &req); err != nil {
				return err
			}
			if h.hasConsent(r.Context(), user, req) {
				return h.issue(w, r, user, req)
			}
		}
		return back("login_required", "interaction is required")
	}
	user, ok := h.currentUser(r)
	if !ok || q.Get("prompt") == "login" {
		return h.showLogin(w, r, req, "", "")
	}
	return h.askConsent(w, r, user, req)
}

func displayName(c store.Client) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// matchRedirect finds got among the registered redirect URIs: exactly, or
// for a loopback http URI with any port (OAuth 2.1 §8.4.2, RFC 8252 §7.3).
// With one registered URI and none sent, that one is used.
func matchRedirect(registered []string, got string) (string, bool) {
	// Exact string comparison, apart from the loopback port (RFC 8252
	// §7.3); registration owns the rule (issue 8, finding 11).
	return registration.MatchRedirectURI(registered, got)
}

func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for _, r := range c {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// clientError is an authorization error the client hears about at its
// redirect URI (RFC 6749 §4.1.2.1). Only request.fail makes one, and a
// request exists only once its redirect URI was matched against the
// client's registration: an unvalidated redirect_uri never gets one.
type clientError struct {
	redirectURI, state string
	code, desc         string
	cause              error // for the log only
}

func (e *clientError) Error() string {
	if e.cause != nil {
		return e.code + ": " + e.desc + ": " + e.cause.Error()
	}
	return e.code + ": " + e.desc
}

func (e *clientError) Unwrap() error { return e.cause }

// fail is the error code (desc) for the client of req, at its redirect URI.
func (req request) fail(code, desc string) *clientError {
	return &clientError{redirectURI: req.RedirectURI, state: req.State, code: code, desc: desc}
}

// redirectError sends the error back to the client (RFC 6749 §4.1.2.1),
// with iss (RFC 9207).
func (h *Handler) redirectError(w http.ResponseWriter, r *http.Request, e *clientError) {
	v := url.Values{"error": {e.code}, "error_description": {e.desc}, "iss": {h.o.Issuer}}
	if e.state != "" {
		v.Set("state", e.state)
	}
	http.Redirect(w, r, withQuery(e.redirectURI, v), http.StatusFound)
}

func withQuery(uri string, v url.Values) string {
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + v.Encode()
}

func (h *Handler) currentUser(r *http.Request) (store.User, bool) {
	ck, err := r.Cookie(h.cookieName())
	if err != nil {
		return store.User{}, false
	}
	var si signIn
	if h.sessions.Open(ck.Value, "", &si) != nil {
		return store.User{}, false
	}
	return h.mayUse(r.Context(), si.UserID, si.signedInAt())
}

// mayUse returns the user as stored now, if a sign-in of theirs made at
// signedIn still counts. The cut-off predicate holds for sign-ins as for
// tokens: a browser signed in before a disable or a user-wide revocation
// is signed out, also once the user is enabled again (they sign in anew).
func (h *Handler) mayUse(ctx context.Context, userID string, signedIn time.Time) (store.User, bool) {
	u, err := h.o.Store.GetUser(ctx, userID)
	if err != nil || u.Disabled {
		return store.User{}, false
	}
	if h.o.Access != nil && h.o.Access.Check(ctx, access.Subject{UserID: u.ID, IssuedAt: signedIn}) != nil {
		return store.User{}, false
	}
	return u, true
}

// errFormExpired: a form whose CSRF token does not match this browser
// (expired, or posted from another site).
var errFormExpired = &web.PageError{Status: http.StatusForbidden, Title: "Session expired",
	Message: "This form has expired or was not sent from this site. Start again from the application."}

func (h *Handler) showLogin(w http.ResponseWriter, r *http.Request, req request, username, msg string) error {
	status := http.StatusOK
	if msg != "" {
		status = http.StatusUnauthorized
	}
	// After an error the identifier is known and not federated: ask for
	// the password straight away.
	return h.renderLogin(w, r, req, status, web.LoginPage{Username: username, Error: msg, AskPassword: msg != ""})
}

// showPasswordStep is the second step of identifier-first sign-in: the
// identifier belongs to no federated tenant, so it is a built-in user's
// (or nobody's: the step looks the same either way).
func (h *Handler) showPasswordStep(w http.ResponseWriter, r *http.Request, req request, username string) error {
	return h.renderLogin(w, r, req, http.StatusOK, web.LoginPage{Username: username, AskPassword: true})
}

func (h *Handler) renderLogin(w http.ResponseWriter, r *http.Request, req request, status int, page web.LoginPage) error {
	sealed, err := h.requests.Seal(req, requestTTL, "")
	if err != nil {
		return web.SomethingWrong(fmt.Errorf("seal the authorization request: %w", err))
	}
	page.CSRF, page.Request, page.ClientName, page.Federated = h.csrf.Token(w, r), sealed, req.ClientName, h.o.Federation != nil
	// The form's submission may end at the client's redirect URI (consent
	// already given, or an error to report): form-action names exactly
	// that one registered redirect target besides ourselves.
	var targets []string
	if req.ClientID != "" {
		targets = append(targets, web.CSPSource(req.RedirectURI))
	}
	web.Render(w, status, "login.html", page, targets...)
	return nil
}

// openForm checks CSRF and opens the sealed request of a form post.
func (h *Handler) openForm(w http.ResponseWriter, r *http.Request) (request, error) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil || !h.csrf.Check(r) {
		return request{}, errFormExpired
	}
	var req request
	if h.requests.Open(r.PostFormValue("request"), "", &req) != nil {
		return request{}, &web.PageError{Status: http.StatusBadRequest, Title: "Session expired", Message: "This sign-in took too long. Start again from the application."}
	}
	return req, nil
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) error {
	req, err := h.openForm(w, r)
	if err != nil {
		return err
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	// Home realm first: a company account goes to its IdP whatever else
	// the form carried; mcpgate never checks (or asks for) its password.
	if started, err := h.startFederation(w, r, req, username); started || err != nil {
		return err
	}
	if h.o.Federation != nil && r.PostFormValue("step") == "identify" {
		return h.showPasswordStep(w, r, req, username)
	}
	user, err := h.o.Directory.Authenticate(r.Context(), username, r.PostFormValue("password"), clientAddr(r))
	switch {
	case errors.Is(err, idp.ErrLocked):
		h.log.Warn("sign-in locked", "username", username, "addr", clientAddr(r))
		return h.showLogin(w, r, req, username, "Too many failed attempts. Wait a few minutes and try again.")
	case err != nil:
		h.log.Info("sign-in failed", "username", username, "addr", clientAddr(r))
		return h.showLogin(w, r, req, username, "Wrong username or password.")
	}
	if err := h.signIn(w, user); err != nil {
		return err
	}
	h.log.Info("signed in", "user", user.ID, "addr", clientAddr(r))
	return h.askConsent(w, r, user, req)
}

// signinPage is the sign-in page on its own, for mcpgate's own pages
// (such as /connections): after it the browser returns to a local path.
func (h *Handler) signinPage(w http.ResponseWriter, r *http.Request) error {
	return h.showLogin(w, r, request{Return: LocalReturn(r.URL.Query().Get("return"))}, "", "")
}

// CurrentUser returns the signed-in user of a browser request.
func (h *Handler) CurrentUser(r *http.Request) (store.User, bool) { return h.currentUser(r) }

// CSRF is the forms' CSRF guard, shared with mcpgate's other pages.
func (h *Handler) CSRF() *web.CSRF { return h.csrf }

// signIn sets the sealed sign-in cookie.
func (h *Handler) signIn(w http.ResponseWriter, user store.User) error {
	now := h.o.Now()
	cookie, err := h.sessions.Seal(signIn{UserID: user.ID, AuthTime: now.Unix(), At: now.UnixNano()}, h.o.SessionTTL, "")
	if err != nil {
		return web.SomethingWrong(fmt.Errorf("seal the sign-in cookie: %w", err))
	}
	http.SetCookie(w, &http.Cookie{Name: h.cookieName(), Value: cookie, Path: "/", HttpOnly: true,
		Secure: h.o.SecureCookies, SameSite: http.SameSiteLaxMode, MaxAge: int(h.o.SessionTTL.Seconds())})
	return nil
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// decide narrows the request's scopes to what policy grants this user;
// an error (for the client) when nothing the client asked for is granted.
func (h *Handler) decide(r *http.Request, user store.User, req *request) error {
	if req.Decided {
		return nil
	}
	res := h.o.Resources[req.Resource]
	client, err := h.o.Clients.Client(r.Context(), req.ClientID)
	if err != nil {
		return fmt.Errorf("client %q (%v): %w", req.ClientID, err, &web.PageError{Status: http.StatusBadRequest,
			Title: "Unknown application", Message: "This application is no longer registered."})
	}
	granted := h.o.Granter.Grant(&user, client, res, req.Scopes)
	if len(granted) == 0 && len(res.Scopes) > 0 {
		return fmt.Errorf("no scope granted to user %s, client %s, requested %q: %w", user.ID, req.ClientID, strings.Join(req.Scopes, " "),
			req.fail(oauth.InvalidScope, "policy grants you none of the requested scopes on "+res.ServerName))
	}
	req.Scopes, req.Decided = granted, true
	return nil
}

func (h *Handler) askConsent(w http.ResponseWriter, r *http.Request, user store.User, req request) error {
	if req.ClientID == "" {
		// A sign-in for mcpgate's own pages, not for a client. Checked
		// again (it was sealed, but this is the line that redirects).
		w.Header().Set("Location", LocalReturn(req.Return))
		w.WriteHeader(http.StatusSeeOther)
		return nil
	}
	if err := h.decide(r, user, &req); err != nil {
		return err
	}
	if h.hasConsent(r.Context(), user, req) {
		return h.issue(w, r, user, req)
	}
	sealed, err := h.requests.Seal(req, requestTTL, user.ID)
	if err != nil {
		return web.SomethingWrong(fmt.Errorf("seal the consent request: %w", err))
	}
	res := h.o.Resources[req.Resource]
	asked, allowed := h.splitConsented(r.Context(), user, req)
	describe := func(s string) string {
		if h.o.ScopeText != nil {
			if t := h.o.ScopeText(res, s); t != "" {
				return t
			}
		}
		return "Use " + res.ServerName + " with the permission “" + s + "”"
	}
	lines, already := scopeLines(res, asked, describe), scopeLines(res, allowed, describe)
	ru, _ := url.Parse(req.RedirectURI)
	host := ru.Host
	if host == "" {
		host = ru.Scheme + ":"
	}
	userName := user.Email
	if userName == "" {
		userName = user.Username
	}
	var conns []web.ConnectionLine
	if h.o.Connections != nil {
		conns = h.o.Connections(r.Context(), user, req.Resource)
	}
	web.Render(w, http.StatusOK, "consent.html", web.ConsentPage{CSRF: h.csrf.Token(w, r), Request: sealed,
		ClientName: req.ClientName, ClientID: req.ClientID, RedirectHost: host, ServerName: res.ServerName,
		Resource: req.Resource, Scopes: lines, Allowed: already, User: userName, Unverified: req.Dynamic, Connections: conns}, web.CSPSource(req.RedirectURI))
	return nil
}

func (h *Handler) consent(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return &web.PageError{Status: http.StatusBadRequest, Title: "Invalid request", Message: "The form could not be read."}
	}
	user, ok := h.currentUser(r)
	if !ok {
		return &web.PageError{Status: http.StatusUnauthorized, Title: "Signed out", Message: "Your sign-in expired. Start again from the application."}
	}
	if !h.csrf.Check(r) {
		return errFormExpired
	}
	var req request
	// Sealed for this user: a consent form cannot be replayed by another.
	if h.requests.Open(r.PostFormValue("request"), user.ID, &req) != nil {
		return &web.PageError{Status: http.StatusBadRequest, Title: "Session expired", Message: "This request took too long. Start again from the application."}
	}
	if r.PostFormValue("decision") != "allow" {
		return fmt.Errorf("consent denied by user %s to client %s: %w", user.ID, req.ClientID,
			req.fail(oauth.AccessDenied, "the user denied access"))
	}
	now := h.o.Now()
	prev, err := h.o.Store.GetConsent(r.Context(), user.ID, req.ClientID)
	c := withConsent(prev, err == nil, user.ID, req.ClientID, req.Resource, req.Scopes, now)
	if err := h.o.Store.PutConsent(r.Context(), c); err != nil {
		return web.SomethingWrong(fmt.Errorf("store consent: %w", err))
	}
	return h.issue(w, r, user, req)
}

// issue stores a single-use code and redirects back with it.
func (h *Handler) issue(w http.ResponseWriter, r *http.Request, user store.User, req request) error {
	code, hash := tokens.NewSecret("mgc_")
	now := h.o.Now()
	err := h.o.Store.CreateAuthCode(r.Context(), store.AuthCode{
		CodeHash: hash, ClientID: req.ClientID, UserID: user.ID, RedirectURI: req.RedirectURI,
		CodeChallenge: req.CodeChallenge, Resource: req.Resource, Scope: strings.Join(req.Scopes, " "),
		GrantID: randomSecret(), CreatedAt: now, ExpiresAt: now.Add(h.o.CodeTTL),
	})
	if err != nil {
		ce := req.fail(oauth.ServerError, "could not issue a code")
		ce.cause = fmt.Errorf("store authorization code: %w", err)
		return ce
	}
	h.log.Info("authorization code issued", "user", user.ID, "client", req.ClientID, "resource", req.Resource, "scope", strings.Join(req.Scopes, " "))
	v := url.Values{"code": {code}, "iss": {h.o.Issuer}}
	if req.State != "" {
		v.Set("state", req.State)
	}
	web.SecurityHeaders(w, web.CSPSource(req.RedirectURI))
	http.Redirect(w, r, withQuery(req.RedirectURI, v), http.StatusSeeOther)
	return nil
}
