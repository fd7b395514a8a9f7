package grants

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/access"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/tokens"
)

// RFC 8693 identifiers.
const (
	GrantTokenExchange  = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeAccess     = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT        = "urn:ietf:params:oauth:token-type:jwt"
	defaultExchangedTTL = 5 * time.Minute
)

// ExchangeRule entitles one client (an MCP server calling downstream APIs
// itself) to trade tokens: it presents a token issued for one of
// SubjectAudiences and may get one for any of Audiences.
type ExchangeRule struct {
	SubjectAudiences []string
	Audiences        []string
	// Connections it may obtain the caller's own vaulted token of, by
	// asking for audience ConnectionAudience + name.
	Connections []string
	TTL         time.Duration
}

// ConnectionAudience prefixes a connection name to ask token exchange for
// the caller's token of that connection.
const ConnectionAudience = "urn:mcpgate:connection:"

// exchangeResponse is RFC 8693 §2.2.1.
type exchangeResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int    `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
}

// tokenExchange implements RFC 8693 for the audiences configuration
// entitles the calling client to: the new token keeps the user (sub) and
// the agent (act.sub) of the subject token and names the new audience.
func (h *Handler) tokenExchange(r *http.Request, client store.Client) (*exchangeResponse, *oauth.Error) {
	rule, ok := h.o.Exchanges[client.ID]
	if !ok || client.TokenEndpointAuthMethod == "none" || !oauth.OperatorRegistered(client) {
		return nil, oauth.Errorf(oauth.UnauthorizedClient, "this client may not exchange tokens")
	}
	subject := r.PostFormValue("subject_token")
	if subject == "" || (r.PostFormValue("subject_token_type") != TokenTypeAccess && r.PostFormValue("subject_token_type") != TokenTypeJWT) {
		return nil, oauth.Errorf(oauth.InvalidRequest, "subject_token and subject_token_type (access_token) are required")
	}
	if t := r.PostFormValue("requested_token_type"); t != "" && t != TokenTypeAccess {
		return nil, oauth.Errorf(oauth.InvalidRequest, "only access tokens can be requested")
	}
	audience, oerr := exchangeTarget(r)
	if oerr != nil {
		return nil, oerr
	}
	name, isConn := strings.CutPrefix(audience, ConnectionAudience)
	if isConn {
		if !slices.Contains(rule.Connections, name) || h.o.ConnectionToken == nil {
			return nil, oauth.Errorf(oauth.InvalidTarget, "this client may not obtain tokens of connection %q", name)
		}
	} else if h.o.Resources.Lookup(audience) != nil {
		// A token for one of this gateway's servers is issued only by
		// the grants that ask the user and evaluate that server's policy;
		// an exchange would carry another server's scopes over, whatever
		// the rule (a config slip) lists.
		h.log.Warn("token exchange for a server of this gateway refused", "client", client.ID, "audience", audience)
		return nil, oauth.Errorf(oauth.InvalidTarget, "tokens for %q come from the authorization flow, not from an exchange", audience)
	} else if !slices.Contains(rule.Audiences, audience) {
		// RFC 8693 §2.2.2: an audience the client may not have.
		return nil, oauth.Errorf(oauth.InvalidTarget, "this client may not obtain tokens for %q", audience)
	}
	var claims *tokens.Claims
	for _, aud := range rule.SubjectAudiences {
		if c, err := h.o.Verify(subject, aud); err == nil {
			claims = c
			break
		}
	}
	// A subject token that is cut off (revoked, its grant or parent
	// revoked, its user disabled) gets nothing, minted or vaulted.
	if claims == nil || h.o.Access.Check(r.Context(), access.FromClaims(claims)) != nil {
		return nil, oauth.Errorf(oauth.InvalidGrant, "subject_token is not a valid token issued for this server")
	}
	if isConn {
		tok, err := h.o.ConnectionToken(r.Context(), claims.Subject, claims.Tenant, name)
		if err != nil {
			// The user has not connected it (or the provider refused a
			// refresh): tell the server, which tells the user.
			return nil, &oauth.Error{Code: oauth.InvalidGrant, Description: err.Error(), Cause: err}
		}
		h.log.Info("connection token handed out", "client", client.ID, "sub", claims.Subject, "connection", name)
		return &exchangeResponse{AccessToken: tok, IssuedTokenType: TokenTypeAccess, TokenType: "Bearer"}, nil
	}
	scopes := claims.Scopes()
	if asked := oauth.ParseScope(r.PostFormValue("scope")); len(asked) > 0 {
		scopes = intersect(asked, scopes) // never wider than the subject token
	}
	scopes = oauth.LimitToClient(client, scopes)
	ttl := rule.TTL
	if ttl <= 0 {
		ttl = defaultExchangedTTL
	}
	actor := claims.Actor
	if actor == "" {
		actor = claims.ClientID
	}
	now := h.o.Now()
	tok, err := h.o.Tokens.Mint(tokens.Claims{Subject: claims.Subject, Audience: audience, ClientID: claims.ClientID, Actor: actor,
		Scope: joinScopes(scopes), Tenant: claims.Tenant, Roles: claims.Roles, Groups: claims.Groups, Permissions: claims.Permissions,
		IssuedAt: now, ExpiresAt: now.Add(ttl), GrantID: claims.GrantID, ParentID: tokens.ParentOf(claims)})
	if err != nil {
		return nil, &oauth.Error{Code: oauth.ServerError, Description: "could not issue a token", Status: 500, Cause: err}
	}
	h.log.Info("token exchanged", "client", client.ID, "sub", claims.Subject, "actor", actor, "audience", audience)
	return &exchangeResponse{AccessToken: tok, IssuedTokenType: TokenTypeAccess, TokenType: "Bearer",
		ExpiresIn: int(ttl.Seconds()), Scope: joinScopes(scopes)}, nil
}

func joinScopes(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out
}

// exchangeTarget is the one audience of a token-exchange request: RFC 8693
// §2.1 lets audience and resource each repeat, but a token here has one
// audience, so more than one distinct target is invalid_target rather
// than a silent pick of the first.
func exchangeTarget(r *http.Request) (string, *oauth.Error) {
	var target string
	for _, v := range append(slices.Clone(r.PostForm["audience"]), r.PostForm["resource"]...) {
		if v == "" {
			continue
		}
		if target != "" && v != target {
			return "", oauth.Errorf(oauth.InvalidTarget, "one audience per exchanged token")
		}
		target = v
	}
	return target, nil
}
