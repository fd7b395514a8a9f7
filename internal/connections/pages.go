package connections

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/mcpoauth"
	"github.com/mcpgate/mcpgate/internal/seal"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/web"
)

// Pages serves /connections: see, connect and disconnect services.
type Pages struct {
	m           *Manager
	currentUser func(*http.Request) (store.User, bool)
	csrf        *web.CSRF
	states      *seal.Box
}

// NewPages builds the pages; currentUser and csrf come from the sign-in
// flow, so one sign-in serves both.
func NewPages(m *Manager, currentUser func(*http.Request) (store.User, bool), csrf *web.CSRF, secret []byte) (*Pages, error) {
	box, err := seal.New(secret, "connection authorization state")
	if err != nil {
		return nil, err
	}
	return &Pages{m: m, currentUser: currentUser, csrf: csrf, states: box}, nil
}

// Mount registers the routes.
func (p *Pages) Mount(mux *http.ServeMux) {
	// Each page returns its error; web.Fail renders and logs it.
	mux.Handle("GET /connections", web.Handle(p.m.log, p.list))
	mux.Handle("POST /connections/{name}/connect", web.Handle(p.m.log, p.connect))
	mux.Handle("POST /connections/{name}/disconnect", web.Handle(p.m.log, p.disconnect))
	mux.Handle("GET /connections/callback", web.Handle(p.m.log, p.callback))
	// An mcp-oauth dynamic registration's own callback, per authorization
	// server (mcpoauth.IssuerRedirect): the tag must be the flow's.
	mux.Handle("GET /connections/callback/{issuer}", web.Handle(p.m.log, p.callback))
}

func (p *Pages) user(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	u, ok := p.currentUser(r)
	if !ok {
		http.Redirect(w, r, "/oauth/signin?return="+url.QueryEscape("/connections"), http.StatusSeeOther)
	}
	return u, ok
}

func (p *Pages) list(w http.ResponseWriter, r *http.Request) error {
	u, ok := p.user(w, r)
	if !ok {
		return nil // sent to sign in
	}
	return p.render(w, r, u)
}

// Outcomes the pages report after a redirect, as ?msg=CODE&name=NAME.
// Only these texts are ever shown, and NAME only when it is one of the
// user's services: the query is anyone's to write (a link from another
// site), so its text must never reach the page.
var outcomes = map[string]string{
	"connected":    "%s is connected.",
	"disconnected": "%s is disconnected.",
	"refused":      "%s was not connected: the service did not allow it.",
	"failed":       "%s could not be connected; try again.",
}

// outcomeURL is the connections page reporting code for connection name.
func outcomeURL(code, name string) string {
	return "/connections?" + url.Values{"msg": {code}, "name": {name}}.Encode()
}

// message is the text for the page's ?msg= and ?name=, or "".
func message(q url.Values, services []Status) string {
	text, ok := outcomes[q.Get("msg")]
	if !ok {
		return ""
	}
	for _, s := range services {
		if s.Name == q.Get("name") {
			return fmt.Sprintf(text, s.Name)
		}
	}
	return ""
}

func (p *Pages) render(w http.ResponseWriter, r *http.Request, u store.User) error {
	st, err := p.m.Status(r.Context(), u)
	if err != nil {
		return &web.PageError{Status: http.StatusInternalServerError, Title: "Error", Message: "Your connections could not be read.",
			Cause: fmt.Errorf("connections of user %s: %w", u.ID, err)}
	}
	page := web.ConnectionsPage{CSRF: p.csrf.Token(w, r), User: displayUser(u), Message: message(r.URL.Query(), st)}
	for _, s := range st {
		line := web.ConnectionLine{Name: s.Name, Description: s.Description, Connected: s.Connected}
		if s.Connected {
			line.Since = s.Since.Format(time.DateOnly)
		}
		page.Lines = append(page.Lines, line)
	}
	// form-action stays 'self': Connect answers with a page on our origin
	// (see connect), so no provider's origin needs listing.
	web.Render(w, http.StatusOK, "connections.html", page)
	return nil
}

func displayUser(u store.User) string {
	if u.Email != "" {
		return u.Email
	}
	return u.ID
}

// connState travels to the provider and back. It is bound to the
// signed-in user and to the browser (a MAC of its CSRF cookie): a callback
// from another browser, or for another user, stores nothing (RFC 9700
// §4.7.1), so nobody can connect their account into someone else's vault
// or someone else's into theirs.
type connState struct {
	User     string `json:"u"`
	Name     string `json:"n"`
	Verifier string `json:"v"`
	Browser  string `json:"b"`
	// Tenant is the user's tenant at the start (per-tenant connections).
	Tenant string `json:"t,omitempty"`
	// MCP is the pending request of an mcp-oauth connection: issuer,
	// endpoints, client and scopes as discovered when it started.
	MCP *mcpoauth.Pending `json:"m,omitempty"`
}

// connBinding labels the browser binding of connection states.
const connBinding = "connection"

func (p *Pages) redirectURI() string { return p.m.base + "/connections/callback" }

// mcpRedirect is the callback an mcp-oauth request names: its client's.
func (p *Pages) mcpRedirect(pend mcpoauth.Pending) string {
	if pend.RedirectURI != "" {
		return pend.RedirectURI
	}
	return p.redirectURI()
}

// connect sends the browser to the provider (authorization code + PKCE).
func (p *Pages) connect(w http.ResponseWriter, r *http.Request) error {
	u, ok := p.user(w, r)
	if !ok {
		return nil // sent to sign in
	}
	if r.ParseForm() != nil || !p.csrf.Check(r) {
		return errFormExpired
	}
	name := r.PathValue("name")
	pr, ok := p.m.Provider(name, u.Tenant)
	if !ok {
		return errUnknownService
	}
	if pr.MCP != nil {
		return p.connectMCP(w, r, u, pr)
	}
	verifier := rand.Text() + rand.Text()
	state, err := p.states.Seal(connState{User: u.ID, Name: name, Verifier: verifier, Browser: p.csrf.Binding(r, connBinding)}, 10*time.Minute, "")
	if err != nil {
		return web.SomethingWrong(fmt.Errorf("seal the connection state: %w", err))
	}
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {pr.ClientID}, "redirect_uri": {p.redirectURI()}, "state": {state},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	if len(pr.Scopes) > 0 {
		q.Set("scope", strings.Join(pr.Scopes, " "))
	}
	for k, v := range pr.ExtraParams {
		q.Set(k, v)
	}
	sep := "?"
	if strings.Contains(pr.AuthorizeURL, "?") {
		sep = "&"
	}
	// A page, not a redirect: browsers apply this form's CSP form-action
	// to every redirect of its submission, the provider's own redirects
	// (to its sign-in on another origin, say) included. The page ends the
	// submission here; its refresh is an ordinary navigation.
	web.Render(w, http.StatusOK, "continue.html", web.ContinuePage{Title: "Connecting " + pr.Name,
		Text: "Taking you to " + pr.Name + " to allow access.", URL: pr.AuthorizeURL + sep + q.Encode()})
	return nil
}

// callback stores the provider's tokens, sealed in the vault.
func (p *Pages) callback(w http.ResponseWriter, r *http.Request) error {
	u, ok := p.user(w, r)
	if !ok {
		return nil // sent to sign in
	}
	q := r.URL.Query()
	var st connState
	if p.states.Open(q.Get("state"), "", &st) != nil || st.User != u.ID || !p.csrf.Bound(r, connBinding, st.Browser) {
		return &web.PageError{Status: http.StatusBadRequest, Title: "Expired",
			Message: "This connection attempt expired or did not start here. Try again from your connections page.",
			Cause:   fmt.Errorf("connection callback of user %s refused: expired, or another user's or browser's", u.ID)}
	}
	want := ""
	if st.MCP != nil {
		want = st.MCP.CallbackTag()
	}
	if r.PathValue("issuer") != want {
		// A code for another authorization server's registration (a
		// mix-up: RFC 9700 §4.4): never redeemed with this flow.
		p.m.log.Warn("connection callback refused: it came from another authorization server's redirect", "user", u.ID, "connection", st.Name)
		http.Redirect(w, r, outcomeURL("failed", st.Name), http.StatusSeeOther)
		return nil
	}
	if e := q.Get("error"); e != "" {
		p.m.log.Info("connection refused by the provider", "user", u.ID, "connection", st.Name, "error", e)
		if st.MCP != nil && mcpoauth.ClientRefused(e) {
			p.m.forgetClient(r.Context(), st.MCP.Binding)
		}
		http.Redirect(w, r, outcomeURL("refused", st.Name), http.StatusSeeOther)
		return nil
	}
	pr, ok := p.m.Provider(st.Name, u.Tenant)
	if !ok {
		return errUnknownService
	}
	if pr.MCP != nil || st.MCP != nil {
		return p.callbackMCP(w, r, u, pr, st)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {p.redirectURI()}, "code_verifier": {st.Verifier}}
	if res := pr.ExtraParams["resource"]; res != "" {
		form.Set("resource", res)
	}
	tok, err := p.m.tokenRequest(r.Context(), pr, form)
	if err != nil {
		p.m.log.Warn("connection failed", "user", u.ID, "connection", pr.Name, "err", err)
		http.Redirect(w, r, outcomeURL("failed", pr.Name), http.StatusSeeOther)
		return nil
	}
	rec := store.Connection{UserID: u.ID, Tenant: pr.Tenant, Name: pr.Name}
	if err := p.m.seal(&rec, tok); err != nil {
		return notSaved(fmt.Errorf("seal connection %s of user %s: %w", pr.Name, u.ID, err))
	}
	if err := p.m.store.PutConnection(r.Context(), rec); err != nil {
		return notSaved(fmt.Errorf("store connection %s of user %s: %w", pr.Name, u.ID, err))
	}
	p.m.mu.Lock()
	delete(p.m.cache, u.ID+"\x00"+pr.Tenant+"\x00"+pr.Name)
	p.m.mu.Unlock()
	p.m.log.Info("connection connected", "user", u.ID, "connection", pr.Name)
	http.Redirect(w, r, outcomeURL("connected", pr.Name), http.StatusSeeOther)
	return nil
}

func (p *Pages) disconnect(w http.ResponseWriter, r *http.Request) error {
	u, ok := p.user(w, r)
	if !ok {
		return nil // sent to sign in
	}
	if r.ParseForm() != nil || !p.csrf.Check(r) {
		return errFormExpired
	}
	name := r.PathValue("name")
	if err := p.m.Disconnect(r.Context(), u.ID, u.Tenant, name); err != nil {
		return &web.PageError{Status: http.StatusBadRequest, Title: "Error", Message: "Could not disconnect.",
			Cause: fmt.Errorf("disconnect %s of user %s: %w", name, u.ID, err)}
	}
	p.m.log.Info("connection disconnected", "user", u.ID, "connection", name)
	http.Redirect(w, r, outcomeURL("disconnected", name), http.StatusSeeOther)
	return nil
}

// The pages' errors that need no cause.
var (
	errFormExpired    = &web.PageError{Status: http.StatusForbidden, Title: "Expired", Message: "This form expired; reload the page."}
	errUnknownService = &web.PageError{Status: http.StatusNotFound, Title: "Unknown service", Message: "There is no such service to connect."}
)

// notSaved is the page for a connection the provider granted but that
// could not be kept (cause).
func notSaved(cause error) *web.PageError {
	return &web.PageError{Status: http.StatusInternalServerError, Title: "Error", Message: "The connection could not be saved.", Cause: cause}
}

// connectMCP starts an mcp-oauth connection: discovery, registration and
// scopes happen now (so a moved upstream is followed at every connect),
// and what they decided travels sealed in the state, bound to this user
// and browser like any connection state.
func (p *Pages) connectMCP(w http.ResponseWriter, r *http.Request, u store.User, pr Provider) error {
	pend, d, err := p.m.authorizeMCP(r.Context(), pr, u.ID, u.Tenant)
	if err != nil {
		return &web.PageError{Status: http.StatusBadGateway, Title: "Cannot connect",
			Message: pr.Name + " could not be reached for authorization; try again later.",
			Cause:   fmt.Errorf("connect %s for user %s: %w", pr.Name, u.ID, err)}
	}
	state, err := p.states.Seal(connState{User: u.ID, Name: pr.Name, Browser: p.csrf.Binding(r, connBinding), Tenant: u.Tenant, MCP: &pend}, 10*time.Minute, "")
	if err != nil {
		return web.SomethingWrong(fmt.Errorf("seal the connection state: %w", err))
	}
	web.Render(w, http.StatusOK, "continue.html", web.ContinuePage{Title: "Connecting " + pr.Name,
		Text: "Taking you to " + pr.Name + " to allow access.", URL: pend.AuthorizationURL(d.AS.AuthorizationEndpoint, p.mcpRedirect(pend), state)})
	return nil
}

// callbackMCP finishes an mcp-oauth connection: the iss check (RFC 9207)
// before anything is redeemed, then the code exchange at the token
// endpoint recorded when the flow started.
func (p *Pages) callbackMCP(w http.ResponseWriter, r *http.Request, u store.User, pr Provider, st connState) error {
	if pr.MCP == nil || st.MCP == nil || st.Tenant != u.Tenant {
		return errUnknownService
	}
	tok, err := p.m.finishMCP(r.Context(), pr, *st.MCP, r.URL.Query(), p.mcpRedirect(*st.MCP))
	if err != nil {
		p.m.log.Warn("connection failed", "user", u.ID, "connection", pr.Name, "err", err)
		http.Redirect(w, r, outcomeURL("failed", pr.Name), http.StatusSeeOther)
		return nil
	}
	rt := pr.rowTenant(u.Tenant)
	rec := store.Connection{UserID: u.ID, Tenant: rt, Name: pr.Name}
	if err := p.m.sealMCP(r.Context(), &rec, tok, st.MCP.Binding); err != nil {
		return notSaved(fmt.Errorf("seal connection %s of user %s: %w", pr.Name, u.ID, err))
	}
	if err := p.m.store.PutConnection(r.Context(), rec); err != nil {
		return notSaved(fmt.Errorf("store connection %s of user %s: %w", pr.Name, u.ID, err))
	}
	p.m.forget(connKey(u.ID, rt, pr.Name))
	p.m.log.Info("connection connected", "user", u.ID, "connection", pr.Name, "issuer", st.MCP.Issuer, "client", st.MCP.ClientKind)
	http.Redirect(w, r, outcomeURL("connected", pr.Name), http.StatusSeeOther)
	return nil
}
