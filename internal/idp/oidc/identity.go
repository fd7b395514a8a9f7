package oidc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// Identity is a user as an upstream provider describes them.
type Identity struct {
	// Subject is "<provider>:<sub>", so two providers never collide.
	Subject  string
	Email    string // empty when the provider says email_verified=false
	Username string // the provider's preferred_username (or mapped claim), unqualified
	Tenant   string // the provider's tenant
	Groups   []string
	// Roles and Permissions come from the groups through GroupMapping.
	Roles       []string
	Permissions []string
	Provider    string // the provider's name
}

// User maps the identity to a store record (Source = the provider).
// The username is qualified, "<provider>:<username>", so that it can
// neither collide with a built-in user (whose names have no colon) nor
// with another provider's; it is empty when the provider gives none.
func (id Identity) User(now time.Time) store.User {
	username := ""
	if id.Username != "" {
		username = id.Provider + ":" + id.Username
	}
	return store.User{
		ID:          id.Subject,
		Username:    username,
		Email:       id.Email,
		Tenant:      id.Tenant,
		Groups:      slices.Clone(id.Groups),
		Roles:       slices.Clone(id.Roles),
		Permissions: slices.Clone(id.Permissions),
		Source:      id.Provider,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
}

// decodeClaims decodes a JSON object keeping numbers exact.
func decodeClaims(decode func(any) error) (map[string]any, error) {
	var raw json.RawMessage
	if err := decode(&raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("claims are not a JSON object")
	}
	return m, nil
}

// lookup finds a claim by its name, or by a dotted path into nested
// objects when no top-level claim has that name.
func lookup(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	if !strings.Contains(name, ".") {
		return nil, false
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// stringClaim returns a string (or number) claim.
func stringClaim(claims map[string]any, name string) string {
	v, _ := lookup(claims, name)
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

// listClaim returns a list-of-strings claim (a lone string counts as a
// list of one). Absent: nil; present but empty: an empty, non-nil list.
func listClaim(claims map[string]any, name string) []string {
	v, ok := lookup(claims, name)
	if !ok || v == nil {
		return nil
	}
	out := []string{}
	switch v := v.(type) {
	case string:
		if v != "" {
			out = append(out, v)
		}
	case []any:
		for _, e := range v {
			switch e := e.(type) {
			case string:
				if e != "" && !slices.Contains(out, e) {
					out = append(out, e)
				}
			case json.Number:
				if !slices.Contains(out, e.String()) {
					out = append(out, e.String())
				}
			}
		}
	}
	return out
}

// identity maps claims to an Identity.
func (p *Provider) identity(claims map[string]any) (Identity, error) {
	sub := stringClaim(claims, p.cfg.Claims.Subject)
	if sub == "" {
		return Identity{}, fmt.Errorf("oidc %s: no subject in claim %q", p.cfg.Name, p.cfg.Claims.Subject)
	}
	id := Identity{
		Subject:  p.cfg.Name + ":" + sub,
		Email:    email(claims, p.cfg.Claims.Email),
		Username: stringClaim(claims, p.cfg.Claims.Username),
		Tenant:   p.cfg.Tenant,
		Groups:   listClaim(claims, p.cfg.Claims.Groups),
		Provider: p.cfg.Name,
	}
	id.Roles, id.Permissions = p.grants(id.Groups)
	return id, nil
}

// email returns the e-mail claim unless the provider says it is not
// verified.
func email(claims map[string]any, name string) string {
	if v, ok := claims["email_verified"]; ok {
		switch v {
		case false, "false":
			return ""
		}
	}
	return strings.TrimSpace(stringClaim(claims, name))
}

// grants unions the roles and permissions of groups.
func (p *Provider) grants(groups []string) (roles, perms []string) {
	for _, g := range groups {
		gr, ok := p.cfg.GroupMapping[g]
		if !ok {
			continue
		}
		for _, r := range gr.Roles {
			if !slices.Contains(roles, r) {
				roles = append(roles, r)
			}
		}
		for _, x := range gr.Permissions {
			if !slices.Contains(perms, x) {
				perms = append(perms, x)
			}
		}
	}
	return roles, perms
}

// merge fills what id lacks from userinfo claims, which must be about the
// same subject (OIDC Core §5.3.2); otherwise they are ignored.
func (p *Provider) merge(id Identity, info map[string]any) Identity {
	other, err := p.identity(info)
	if err != nil || other.Subject != id.Subject {
		return id
	}
	if id.Email == "" {
		id.Email = other.Email
	}
	if id.Username == "" {
		id.Username = other.Username
	}
	if id.Groups == nil && other.Groups != nil {
		id.Groups = other.Groups
		id.Roles, id.Permissions = other.Roles, other.Permissions
	}
	return id
}
