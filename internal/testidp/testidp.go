// Package testidp is a real OpenID Provider for tests and examples, built
// on zitadel/oidc's op package with an in-memory store: discovery, the
// authorization code flow with PKCE (S256 required), RS256 ID tokens with
// email, preferred_username and groups claims, userinfo, refresh tokens
// (rotated on use; ask for the offline_access scope), revocation, a plain
// HTML username/password login form, and admin controls for tests
// (DisableUser, RotateKey, AddUser, AddClient).
//
// # Driving the login over HTTP
//
// Server.Login does all of this; by hand (curl, other languages):
//
//  1. GET the authorization URL (issuer + "/authorize?client_id=…&
//     redirect_uri=…&response_type=code&scope=openid email profile
//     offline_access&state=…&nonce=…&code_challenge=…&
//     code_challenge_method=S256"). Answer: 302 to
//     issuer + "/login?authRequestID=ID".
//  2. Optionally GET that page: an HTML form, method POST, action
//     issuer-path + "/login", fields authRequestID (hidden), username,
//     password.
//  3. POST application/x-www-form-urlencoded authRequestID=ID&username=…&
//     password=… to issuer + "/login". Right: 302 to
//     issuer + "/authorize/callback?id=ID", which answers 302 to
//     redirect_uri?code=…&state=…. Wrong password or disabled user: 401
//     with the form again and the reason in <p class="error">.
//
// No cookies are involved: the request id travels in the URL and form.
package testidp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// User is a user of the provider.
type User struct {
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
	Email    string   `yaml:"email"`
	Groups   []string `yaml:"groups"`
}

// Client is a relying party. Without a secret it is a public client.
type Client struct {
	ID           string   `yaml:"id"`
	Secret       string   `yaml:"secret"`
	RedirectURIs []string `yaml:"redirect_uris"`
}

// Server is the provider; it is an http.Handler serving the issuer URL's
// paths (discovery at issuer + "/.well-known/openid-configuration").
type Server struct {
	issuer   string
	path     string // the issuer URL's path, without a trailing slash
	store    *storage
	provider *op.Provider
	handler  http.Handler
}

// LoginPath is the login form's path below the issuer.
const LoginPath = "/login"

// New returns a provider for issuer (https, or http for tests) with the
// given users and clients.
func New(issuer string, users []User, clients []Client) (*Server, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("testidp: issuer %q must be an http(s) URL without query", issuer)
	}
	key, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	s := &Server{issuer: issuer, path: strings.TrimSuffix(u.Path, "/")}
	s.store = &storage{
		users:         map[string]*user{},
		clients:       map[string]*client{},
		authRequests:  map[string]*authRequest{},
		codes:         map[string]string{},
		accessTokens:  map[string]*accessToken{},
		refreshTokens: map[string]*refreshToken{},
		keys:          []*signingKey{key},
		now:           time.Now,
	}
	for _, usr := range users {
		if err := s.AddUser(usr); err != nil {
			return nil, err
		}
	}
	for _, c := range clients {
		if err := s.AddClient(c); err != nil {
			return nil, err
		}
	}
	cfg := &op.Config{
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedScopes: []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail,
			oidc.ScopeOfflineAccess, groupsScope},
		SupportedClaims: append(slices.Clone(op.DefaultSupportedClaims), groupsClaim),
	}
	if _, err := rand.Read(cfg.CryptoKey[:]); err != nil {
		return nil, err
	}
	cfg.CryptoKeyId = "bearer"
	var opts []op.Option
	if u.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure())
	}
	s.provider, err = op.NewProvider(cfg, s.store, op.StaticIssuer(issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("testidp: %w", err)
	}
	interceptor := op.NewIssuerInterceptor(s.provider.IssuerFromRequest)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+LoginPath, s.loginPage)
	mux.HandleFunc("POST "+LoginPath, interceptor.HandlerFunc(s.loginSubmit))
	mux.Handle("/", s.provider)
	s.handler = mux
	if s.path != "" {
		outer := http.NewServeMux()
		outer.Handle(s.path+"/", http.StripPrefix(s.path, mux))
		s.handler = outer
	}
	return s, nil
}

// NewHTTPTest starts a provider on an httptest server on 127.0.0.1 (the
// issuer is the server's URL). Close the server when done.
func NewHTTPTest(users []User, clients []Client) (*Server, *httptest.Server, error) {
	ts := httptest.NewUnstartedServer(nil)
	s, err := New("http://"+ts.Listener.Addr().String(), users, clients)
	if err != nil {
		ts.Close()
		return nil, nil, err
	}
	ts.Config.Handler = s
	ts.Start()
	return s, ts, nil
}

// ServeHTTP serves the provider.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Issuer returns the issuer URL.
func (s *Server) Issuer() string { return s.issuer }

// AddUser adds a user (usernames are unique).
func (s *Server) AddUser(u User) error {
	if u.Username == "" {
		return errors.New("testidp: a user needs a username")
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if _, dup := s.store.users[u.Username]; dup {
		return fmt.Errorf("testidp: duplicate user %q", u.Username)
	}
	u.Groups = slices.Clone(u.Groups)
	s.store.users[u.Username] = &user{User: u, id: subjectFor(u.Username)}
	return nil
}

// AddClient registers a client (ids are unique; at least one redirect
// URI).
func (s *Server) AddClient(c Client) error {
	if c.ID == "" || len(c.RedirectURIs) == 0 {
		return errors.New("testidp: a client needs an id and a redirect URI")
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if _, dup := s.store.clients[c.ID]; dup {
		return fmt.Errorf("testidp: duplicate client %q", c.ID)
	}
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	s.store.clients[c.ID] = &client{Client: c, loginURL: func(id string) string {
		return s.path + LoginPath + "?authRequestID=" + url.QueryEscape(id)
	}}
	return nil
}

// Subject returns the subject ("sub") the provider gives a user, "" for
// an unknown user.
func (s *Server) Subject(username string) string {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if u, ok := s.store.users[username]; ok {
		return u.id
	}
	return ""
}

// DisableUser disables a user: their sign-ins fail, and their refresh and
// access tokens stop working (refresh answers invalid_grant, userinfo
// 403). Unknown users are ignored.
func (s *Server) DisableUser(username string) { s.store.disable(username, true) }

// EnableUser enables a disabled user again (revoked tokens stay revoked).
func (s *Server) EnableUser(username string) { s.store.disable(username, false) }

// SetGroups replaces a user's groups (seen at their next token).
func (s *Server) SetGroups(username string, groups []string) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if u, ok := s.store.users[username]; ok {
		u.Groups = slices.Clone(groups)
	}
}

// RotateKey makes a new signing key current. The old keys stay in the
// JWKS, as during a real rotation.
func (s *Server) RotateKey() error {
	k, err := newSigningKey()
	if err != nil {
		return err
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	s.store.keys = append([]*signingKey{k}, s.store.keys...)
	return nil
}

var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in – test identity provider</title></head>
<body>
<h1>Sign in</h1>
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="authRequestID" value="{{.ID}}">
<p><label>Username <input name="username" value="{{.Username}}" autocomplete="username" autofocus></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password"></label></p>
<p><button type="submit">Sign in</button></p>
</form>
</body></html>
`))

func (s *Server) renderLogin(w http.ResponseWriter, status int, id, username, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = loginTemplate.Execute(w, struct{ Action, ID, Username, Error string }{
		s.path + LoginPath, id, username, msg})
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	if _, err := s.store.AuthRequestByID(r.Context(), id); err != nil {
		http.Error(w, "unknown or expired sign-in request", http.StatusBadRequest)
		return
	}
	s.renderLogin(w, http.StatusOK, id, "", "")
}

func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "cannot read the form", http.StatusBadRequest)
		return
	}
	id, username := r.PostForm.Get("authRequestID"), r.PostForm.Get("username")
	if err := s.store.checkLogin(id, username, r.PostForm.Get("password")); err != nil {
		s.renderLogin(w, http.StatusUnauthorized, id, username, err.Error())
		return
	}
	http.Redirect(w, r, op.AuthCallbackURL(s.provider)(r.Context(), id), http.StatusFound)
}

// owns reports whether u is served by this provider.
func (s *Server) owns(u *url.URL) bool {
	iss, _ := url.Parse(s.issuer)
	return strings.EqualFold(u.Scheme, iss.Scheme) && strings.EqualFold(u.Host, iss.Host) &&
		(s.path == "" || u.Path == s.path || strings.HasPrefix(u.Path, s.path+"/"))
}

var (
	formActionRE = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	hiddenRE     = regexp.MustCompile(`<input type="hidden" name="authRequestID" value="([^"]*)"`)
	errorRE      = regexp.MustCompile(`<p class="error">([^<]*)</p>`)
)

// Login signs username in through the provider's login form, as a
// browser would, and returns the URL the provider finally sends the
// browser to (the client's redirect URI with code and state, or with an
// error). It GETs startURL (the provider's authorization URL, or any URL
// that redirects there), follows redirects, fills in and posts the login
// form, and stops at the first redirect leaving the provider, which it
// does not follow. hc may be nil; its cookie jar, if any, is used, and
// its redirect policy ignored. A refused sign-in is an error carrying the
// page's reason.
func (s *Server) Login(ctx context.Context, hc *http.Client, startURL, username, password string) (*url.URL, error) {
	c := &http.Client{}
	if hc != nil {
		*c = *hc
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	next, err := url.Parse(startURL)
	if err != nil {
		return nil, err
	}
	var form url.Values // non-nil: post it to next
	posted := false
	for range 20 {
		var req *http.Request
		if form != nil {
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, next.String(), strings.NewReader(form.Encode()))
			if err == nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			form, posted = nil, true
		} else {
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, next.String(), nil)
		}
		if err != nil {
			return nil, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		here := req.URL
		if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
			to, err := here.Parse(loc)
			if err != nil {
				return nil, err
			}
			if s.owns(here) && !s.owns(to) {
				return to, nil // the provider sends the browser back to the client
			}
			next = to
			continue
		}
		if s.owns(here) && here.Path == s.path+LoginPath {
			if m := errorRE.FindSubmatch(body); m != nil && posted {
				return nil, fmt.Errorf("testidp: sign-in refused: %s", html.UnescapeString(string(m[1])))
			}
			action, id := formActionRE.FindSubmatch(body), hiddenRE.FindSubmatch(body)
			if resp.StatusCode == http.StatusOK && action != nil && id != nil {
				to, err := here.Parse(html.UnescapeString(string(action[1])))
				if err != nil {
					return nil, err
				}
				next = to
				form = url.Values{"authRequestID": {html.UnescapeString(string(id[1]))},
					"username": {username}, "password": {password}}
				continue
			}
		}
		return nil, fmt.Errorf("testidp: unexpected answer from %s: %s: %.300s", here, resp.Status, body)
	}
	return nil, errors.New("testidp: too many redirects")
}
