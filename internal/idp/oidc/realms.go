package oidc

import (
	"fmt"
	"strings"
)

// RealmConfig sends users whose e-mail is in one of Domains to Provider.
type RealmConfig struct {
	Domains  []string // exact domains, e.g. "tenant-a.example"; no wildcards
	Provider string   // a provider name
}

// Realms finds a user's provider from their e-mail domain (home realm
// discovery). Domains match exactly and case-insensitively: a domain
// covers neither its subdomains nor names that merely end the same way.
// The zero value matches nothing.
type Realms struct {
	byDomain map[string]string
}

// NewRealms builds the lookup table. A domain listed twice is an error,
// even for the same provider, as is a domain that is not a plain
// host name.
func NewRealms(cfgs []RealmConfig) (Realms, error) {
	r := Realms{byDomain: map[string]string{}}
	for i, c := range cfgs {
		if c.Provider == "" {
			return Realms{}, fmt.Errorf("realm %d: provider is required", i)
		}
		if len(c.Domains) == 0 {
			return Realms{}, fmt.Errorf("realm %d (%s): at least one domain is required", i, c.Provider)
		}
		for _, d := range c.Domains {
			norm := strings.ToLower(d)
			if !validDomain(norm) {
				return Realms{}, fmt.Errorf("realm %d (%s): %q is not a domain name", i, c.Provider, d)
			}
			if prev, dup := r.byDomain[norm]; dup {
				return Realms{}, fmt.Errorf("realm %d (%s): domain %q is already mapped to %s", i, c.Provider, d, prev)
			}
			r.byDomain[norm] = c.Provider
		}
	}
	return r, nil
}

// validDomain accepts dot-separated labels of letters, digits and
// hyphens (and non-ASCII letters, for internationalised names), with no
// empty label, no leading or trailing dot and no wildcard.
func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			ok := c == '-' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c > 127
			if !ok {
				return false
			}
		}
	}
	return true
}

// Lookup returns the provider for an e-mail address's domain.
func (r Realms) Lookup(email string) (provider string, ok bool) {
	email = strings.TrimSpace(email)
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return "", false
	}
	domain := strings.ToLower(email[at+1:])
	if !validDomain(domain) {
		return "", false
	}
	provider, ok = r.byDomain[domain]
	return provider, ok
}

// OwnAddress returns email as provider may assert it: unchanged, unless
// its domain belongs to another provider's tenant, then "". An IdP speaks
// for its own tenant; an address in a domain another tenant owns would
// show as that tenant's person (consent page, policies on user.email,
// the CLI's e-mail lookup). Addresses in domains nobody claims are kept.
func (r Realms) OwnAddress(provider, email string) string {
	if owner, ok := r.Lookup(email); ok && owner != provider {
		return ""
	}
	return email
}
