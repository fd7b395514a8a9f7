package authflow

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/idp/oidc"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/web"
)

// Federation signs users in through their company's OIDC provider, found
// from their e-mail domain (home realm discovery).
type Federation struct {
	Providers map[string]*oidc.Provider // by name
	Realms    oidc.Realms
	// Seal protects the provider's refresh token stored with the user.
	Seal func(token string) (string, error)
}

// UserStore is what federation needs to keep user records current.
type UserStore interface {
	CreateUser(ctx context.Context, u store.User) error
	UpdateUser(ctx context.Context, id string, update func(store.User) (store.User, error)) error
}

// fedState travels to the provider and back in the state parameter.
type fedState struct {
	Req      request `json:"r"`
	Provider string  `json:"p"`
	Nonce    string  `json:"n"`
	Verifier string  `json:"v"`
	// Browser binds the state to the browser that started the sign-in
	// (web.CSRF.Binding): a callback carrying a state minted in another
	// browser (login CSRF, RFC 9700 §4.7.1) is refused. The nonce is in
	// the state, so it is bound too, and the ID token must carry it
	// (OIDC Core §15.5.2).
	Browser string `json:"b"`
}

const fedTTL = 10 * time.Minute

// fedBinding labels the browser binding of federated sign-in states.
const fedBinding = "federated sign-in"

// startFederation sends the browser to the provider of the e-mail's
// domain; started is false (and err nil) when the address belongs to no
// federated tenant.
func (h *Handler) startFederation(w http.ResponseWriter, r *http.Request, req request, email string) (started bool, err error) {
	f := h.o.Federation
	if f == nil || !strings.Contains(email, "@") {
		return false, nil
	}
	name, ok := f.Realms.Lookup(email)
	if !ok {
		return false, nil
	}
	p := f.Providers[name]
	if p == nil {
		return false, nil
	}
	browser := h.csrf.Binding(r, fedBinding)
	if browser == "" { // cannot happen: the form's CSRF check needs the cookie
		return true, errFormExpired
	}
	st := fedState{Req: req, Provider: name, Nonce: rand.Text(), Verifier: rand.Text() + rand.Text(), Browser: browser}
	sealed, err := h.fedStates.Seal(st, fedTTL, name)
	if err != nil {
		return true, web.SomethingWrong(fmt.Errorf("seal the federated sign-in state: %w", err))
	}
	u := p.AuthCodeURL(sealed, st.Nonce, st.Verifier)
	if u == "" {
		return true, &web.PageError{Status: http.StatusBadGateway, Title: "Sign-in unavailable",
			Message: "Your organisation's sign-in service cannot be reached right now. Try again in a moment.",
			Cause:   fmt.Errorf("identity provider %s unavailable", name)}
	}
	h.log.Info("sign-in sent to identity provider", "provider", name)
	// Not a redirect: this answers the sign-in form's POST, and browsers
	// apply that page's CSP form-action to every redirect of the
	// submission, the IdP's own included. A page ends the submission on
	// our origin; the refresh that follows is a plain navigation.
	// (Listing every IdP in form-action instead would name all tenants'
	// IdPs on every sign-in page and still break IdPs that redirect on
	// to other origins: federation proxies, MFA, a company's own ADFS.)
	web.Render(w, http.StatusOK, "continue.html", web.ContinuePage{Title: "Signing you in",
		Text: "Taking you to your organisation's sign-in page.", URL: u})
	return true, nil
}

// callback finishes a federated sign-in: the provider's code is exchanged,
// its ID token fully verified, and the user record refreshed with what
// the provider says now.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("provider")
	f := h.o.Federation
	var p *oidc.Provider
	if f != nil {
		p = f.Providers[name]
	}
	if p == nil {
		return &web.PageError{Status: http.StatusNotFound, Title: "Unknown sign-in", Message: "This sign-in service is not configured."}
	}
	q := r.URL.Query()
	var st fedState
	if h.fedStates.Open(q.Get("state"), name, &st) != nil || st.Provider != name {
		return &web.PageError{Status: http.StatusBadRequest, Title: "Sign-in expired", Message: "This sign-in took too long or did not start here. Start again from the application."}
	}
	if !h.csrf.Bound(r, fedBinding, st.Browser) {
		return &web.PageError{Status: http.StatusBadRequest, Title: "Sign-in not started here",
			Message: "This sign-in did not start in this browser, so it cannot finish here. Start again from the application.",
			Cause:   fmt.Errorf("federated callback of provider %s from another browser (%s) refused", name, clientAddr(r))}
	}
	if e := q.Get("error"); e != "" {
		refused := fmt.Errorf("identity provider %s refused sign-in: %q", name, e)
		if st.Req.ClientID != "" {
			// The client and its redirect URI were validated before the
			// sign-in started, so the refusal goes back to it (RFC 6749
			// §4.1.2.1), as one code whatever the IdP said.
			ce := st.Req.fail(oauth.AccessDenied, "the identity provider did not sign the user in")
			ce.cause = refused
			return ce
		}
		return fmt.Errorf("%w: %w", refused, &web.PageError{Status: http.StatusForbidden, Title: "Sign-in refused",
			Message: "Your organisation's sign-in service did not let you in."})
	}
	id, tok, err := p.Exchange(r.Context(), q.Get("code"), st.Verifier, st.Nonce)
	if err != nil {
		return &web.PageError{Status: http.StatusForbidden, Title: "Sign-in failed",
			Message: "Your organisation's sign-in could not be verified. Start again from the application.",
			Cause:   fmt.Errorf("federated sign-in at %s failed: %w", name, err)}
	}
	user := id.User(h.o.Now())
	if own := f.Realms.OwnAddress(name, user.Email); own != user.Email {
		h.log.Warn("e-mail address in another tenant's domain dropped", "provider", name, "user", user.ID)
		user.Email = own
	}
	if tok != nil && tok.RefreshToken != "" && f.Seal != nil {
		if sealed, err := f.Seal(tok.RefreshToken); err == nil {
			user.UpstreamToken = sealed
		}
	}
	if err := h.saveUser(r.Context(), user); err != nil {
		return web.SomethingWrong(fmt.Errorf("store federated user: %w", err))
	}
	// The IdP vouches for who they are, not for whether mcpgate still
	// lets them in: a user an admin disabled here gets no sign-in and no
	// code, whatever their company's IdP says.
	if _, ok := h.mayUse(r.Context(), user.ID, h.o.Now()); !ok {
		return &web.PageError{Status: http.StatusForbidden, Title: "Sign-in not allowed",
			Message: "Your account may not use this gateway. Ask your administrator.",
			Cause:   fmt.Errorf("federated sign-in of cut-off user %s at %s refused", user.ID, name)}
	}
	if err := h.signIn(w, user); err != nil {
		return err
	}
	h.log.Info("signed in", "user", user.ID, "provider", name)
	return h.askConsent(w, r, user, st.Req)
}

// saveUser creates the user or refreshes its attributes from the
// provider, keeping when it was first seen. A username already taken by
// someone else is dropped rather than failing the sign-in.
func (h *Handler) saveUser(ctx context.Context, u store.User) error {
	us, ok := h.o.Store.(UserStore)
	if !ok {
		return errors.New("store cannot save users")
	}
	err := us.CreateUser(ctx, u)
	if errors.Is(err, store.ErrAlreadyExists) {
		err = us.UpdateUser(ctx, u.ID, func(old store.User) (store.User, error) {
			u.CreatedAt = old.CreatedAt
			if u.UpstreamToken == "" {
				u.UpstreamToken = old.UpstreamToken
			}
			if old.Disabled {
				u.Disabled = true // an admin's cut-off outlives a fresh sign-in
			}
			return u, nil
		})
		if errors.Is(err, store.ErrAlreadyExists) { // username taken
			u.Username = ""
			err = us.UpdateUser(ctx, u.ID, func(old store.User) (store.User, error) { u.CreatedAt = old.CreatedAt; return u, nil })
		}
	} else if errors.Is(err, store.ErrAlreadyExists) {
		u.Username = ""
		err = us.CreateUser(ctx, u)
	}
	return err
}
