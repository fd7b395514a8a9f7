// Package web renders the pages people see: sign-in, consent and error
// pages. They are plain HTML forms that work without JavaScript, served
// with headers that forbid framing and inline script, and every form is
// protected against cross-site request forgery. Flow logic is in authflow.
package web

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
)

//go:embed templates/*.html
var files embed.FS

var pages = template.Must(template.New("").ParseFS(files, "templates/*.html"))

// LoginPage is the data of the sign-in page.
type LoginPage struct {
	CSRF       string
	Request    string // the sealed authorization request
	ClientName string
	Username   string
	Error      string
	Federated  bool // some tenants sign in through their own IdP
	// AskPassword: the identifier is known and is not a company account
	// (with federation, the first step asks only who you are: people who
	// sign in at their company's IdP never see a password field here).
	AskPassword bool
}

// ContinuePage ends a form submission on mcpgate's own origin and then
// sends the browser on (a refresh, or the link without it). Browsers apply
// the sign-in page's CSP form-action to every redirect of its form's
// submission; a page ends that submission, so what follows is an ordinary
// navigation that may cross origins (and the IdP may redirect further).
type ContinuePage struct {
	Title string
	Text  string
	URL   string // absolute http(s) URL
}

// ScopeLine is one requested scope, in words.
type ScopeLine struct {
	Scope       string
	Description string
	// Includes lists the narrower scopes a broad scope covers (the
	// server's scope hierarchy); "" for none.
	Includes string
}

// ConsentPage is the data of the consent page.
type ConsentPage struct {
	CSRF         string
	Request      string
	ClientName   string
	ClientID     string
	RedirectHost string
	ServerName   string
	Resource     string
	Scopes       []ScopeLine
	// Allowed are requested scopes the person already allowed this
	// client (shown, not asked again).
	Allowed    []ScopeLine
	User       string
	Unverified bool // the client's name is self-asserted (dynamic registration)
	// Connections the server's tools use, and whether the user has
	// connected each (the consent page offers to).
	Connections []ConnectionLine
}

// ConnectionLine is one service on the connections page.
type ConnectionLine struct {
	Name, Description, Since string
	Connected                bool
}

// ConnectionsPage lists a user's downstream connections.
type ConnectionsPage struct {
	CSRF    string
	User    string
	Message string
	Lines   []ConnectionLine
}

// ErrorPage is shown when the flow cannot safely redirect back.
type ErrorPage struct {
	Title   string
	Message string
}

// Render writes a page with the security headers every page carries.
// formTargets are extra origins or schemes a form may navigate to (the
// consent form's redirect goes to the client).
func Render(w http.ResponseWriter, status int, name string, data any, formTargets ...string) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		// A template bug: a bare answer, still never framed nor cached.
		SecurityHeaders(w)
		http.Error(w, "page error", http.StatusInternalServerError)
		return
	}
	SecurityHeaders(w, formTargets...)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// SecurityHeaders sets CSP (no script, no framing), no caching and no
// referrer, so codes and state never leak through a Referer header.
func SecurityHeaders(w http.ResponseWriter, formTargets ...string) {
	formAction := "'self'"
	for _, t := range formTargets {
		if validSource(t) {
			formAction += " " + t
		}
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// CSPSource is the CSP source expression (CSP3 §2.3.1) for where a form's
// submission may end up: "scheme://host[:port]" for http(s), "scheme:" for
// a private-use scheme (RFC 8252 §7.1), "" when uri is not one of those in
// a plain form (nothing of it may reach the header unchecked: a ';' would
// start a new directive). Paths are left out on purpose: browsers ignore
// a source's path once a request was redirected, which is the only way a
// form of ours reaches another origin.
func CSPSource(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || !schemeRE.MatchString(u.Scheme) {
		return ""
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return u.Scheme + ":"
	}
	if !hostRE.MatchString(u.Host) {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

var (
	schemeRE = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)
	hostRE   = regexp.MustCompile(`^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)
	sourceRE = regexp.MustCompile(`^([a-z][a-z0-9+.-]*:|(http|https)://([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?)$`)
)

// validSource: t is a source expression CSPSource could have made.
func validSource(t string) bool { return sourceRE.MatchString(t) }

// CSRF implements double-submit tokens bound to a per-browser cookie: the
// form carries HMAC(key, cookie), so a page on another site can neither
// read the cookie nor forge the field.
type CSRF struct {
	key    []byte
	secure bool
}

// NewCSRF returns a CSRF guard; secure marks cookies Secure with the
// __Host- prefix (HTTPS deployments).
func NewCSRF(key []byte, secure bool) *CSRF { return &CSRF{key: key, secure: secure} }

// CookieName is the browser-binding cookie's name.
func (c *CSRF) CookieName() string {
	if c.secure {
		return "__Host-mcpgate_csrf"
	}
	return "mcpgate_csrf"
}

// Token returns the form token for this browser, setting its cookie first
// when it has none.
func (c *CSRF) Token(w http.ResponseWriter, r *http.Request) string {
	var id string
	if ck, err := r.Cookie(c.CookieName()); err == nil && len(ck.Value) >= 22 {
		id = ck.Value
	} else {
		id = rand.Text()
		http.SetCookie(w, &http.Cookie{Name: c.CookieName(), Value: id, Path: "/", HttpOnly: true,
			Secure: c.secure, SameSite: http.SameSiteLaxMode})
	}
	return c.sign(id)
}

func (c *CSRF) sign(id string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("csrf:" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Check verifies the form's token against the browser's cookie.
func (c *CSRF) Check(r *http.Request) bool {
	ck, err := r.Cookie(c.CookieName())
	if err != nil || ck.Value == "" {
		return false
	}
	want := c.sign(ck.Value)
	return subtle.ConstantTimeCompare([]byte(want), []byte(r.PostFormValue("csrf"))) == 1
}

// Binding returns a value that ties state handed to a third party (an
// OAuth state sent to an IdP or a downstream provider) to this browser:
// a MAC of the browser's cookie, labelled by purpose, to be sealed into
// the state and checked by Bound when the browser comes back (RFC 9700
// §4.7.1; OIDC Core §15.5.2). "" when the browser has no cookie yet
// (Token sets it; every form that starts such a flow calls Token first).
func (c *CSRF) Binding(r *http.Request, purpose string) string {
	ck, err := r.Cookie(c.CookieName())
	if err != nil || len(ck.Value) < 22 {
		return ""
	}
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("browser binding:" + purpose + ":" + ck.Value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Bound reports whether binding was made by Binding in this browser for
// purpose. An empty binding never matches: a state that was not bound is
// refused.
func (c *CSRF) Bound(r *http.Request, purpose, binding string) bool {
	want := c.Binding(r, purpose)
	return want != "" && binding != "" && subtle.ConstantTimeCompare([]byte(want), []byte(binding)) == 1
}
