package oidc

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestRealmsLookup(t *testing.T) {
	r, err := NewRealms([]RealmConfig{
		{Domains: []string{"tenant-a.example", "Tenant-A.co.example"}, Provider: "tenant-a"},
		{Domains: []string{"tenant-b.example"}, Provider: "tenant-b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		email, want string
	}{
		{"alice@tenant-a.example", "tenant-a"},
		{"Alice@TENANT-A.EXAMPLE", "tenant-a"},
		{"  alice@tenant-a.example ", "tenant-a"},
		{"alice@tenant-a.co.example", "tenant-a"},
		{"bob@tenant-b.example", "tenant-b"},
		{`"a@b"@tenant-b.example`, "tenant-b"}, // quoted local part: the last @ counts
		{"alice@evil-tenant-a.example", ""},    // a suffix is not a match
		{"alice@eviltenant-a.example", ""},
		{"alice@sub.tenant-a.example", ""}, // subdomains are not covered
		{"alice@tenant-a.example.evil.example", ""},
		{"alice@tenant-a.example.", ""},
		{"alice@tenant-a", ""},
		{"alice@", ""},
		{"@tenant-a.example", ""},
		{"tenant-a.example", ""},
		{"", ""},
		{"alice@tenant-a.example@evil.example", ""},
		{"alice@*.example", ""},
	}
	for _, c := range cases {
		got, ok := r.Lookup(c.email)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("Lookup(%q) = %q, %v; want %q", c.email, got, ok, c.want)
		}
	}
	var zero Realms
	if _, ok := zero.Lookup("alice@tenant-a.example"); ok {
		t.Error("zero Realms matched")
	}
}

func TestNewRealmsRejects(t *testing.T) {
	bad := map[string][]RealmConfig{
		"duplicate":          {{Domains: []string{"a.example"}, Provider: "a"}, {Domains: []string{"A.example"}, Provider: "b"}},
		"duplicate, same":    {{Domains: []string{"a.example", "a.example"}, Provider: "a"}},
		"no provider":        {{Domains: []string{"a.example"}}},
		"no domains":         {{Provider: "a"}},
		"wildcard":           {{Domains: []string{"*.a.example"}, Provider: "a"}},
		"leading dot":        {{Domains: []string{".a.example"}, Provider: "a"}},
		"trailing dot":       {{Domains: []string{"a.example."}, Provider: "a"}},
		"an address":         {{Domains: []string{"x@a.example"}, Provider: "a"}},
		"empty":              {{Domains: []string{""}, Provider: "a"}},
		"space":              {{Domains: []string{"a .example"}, Provider: "a"}},
		"hyphen at the edge": {{Domains: []string{"-a.example"}, Provider: "a"}},
	}
	for name, cfgs := range bad {
		if _, err := NewRealms(cfgs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestClaimExtraction(t *testing.T) {
	p, err := New(t.Context(), Config{
		Name: "kc", Tenant: "t", Issuer: "https://kc.example/realms/t", ClientID: "c",
		RedirectURL: "https://gw.example/oauth/callback/kc",
		Claims:      ClaimMapping{Subject: "oid", Username: "upn", Groups: "realm_access.roles"},
		GroupMapping: map[string]Grants{
			"admins": {Roles: []string{"admin"}, Permissions: []string{"write", "read"}},
			"users":  {Permissions: []string{"read"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	claims := func(s string) map[string]any {
		m, err := decodeClaims(func(v any) error { return json.Unmarshal([]byte(s), v) })
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	id, err := p.identity(claims(`{"sub":"x","oid":12345678901234567890,"upn":"alice@t.example",
		"email":"alice@t.example","realm_access":{"roles":["users","admins","users"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "kc:12345678901234567890" || id.Username != "alice@t.example" ||
		!slices.Equal(id.Groups, []string{"users", "admins"}) || !slices.Equal(id.Permissions, []string{"read", "write"}) ||
		!slices.Equal(id.Roles, []string{"admin"}) || id.Tenant != "t" || id.Email != "alice@t.example" {
		t.Errorf("identity = %+v", id)
	}
	// A top-level claim whose name has dots wins over a path.
	id, _ = p.identity(claims(`{"oid":"o","realm_access.roles":"users","realm_access":{"roles":["admins"]}}`))
	if !slices.Equal(id.Groups, []string{"users"}) {
		t.Errorf("groups = %v", id.Groups)
	}
	// An unverified e-mail is dropped.
	id, _ = p.identity(claims(`{"oid":"o","email":"mallory@t.example","email_verified":false}`))
	if id.Email != "" {
		t.Errorf("unverified email kept: %q", id.Email)
	}
	if id.Groups != nil {
		t.Errorf("absent groups claim = %#v, want nil", id.Groups)
	}
	if _, err := p.identity(claims(`{"sub":"x"}`)); err == nil {
		t.Error("missing subject claim accepted")
	}
	// Userinfo fills what a thin ID token lacks, for the same subject only.
	thin, _ := p.identity(claims(`{"oid":"o"}`))
	full := claims(`{"oid":"o","upn":"u","email":"u@t.example","realm_access":{"roles":["users"]}}`)
	if m := p.merge(thin, full); m.Email != "u@t.example" || m.Username != "u" || !slices.Equal(m.Permissions, []string{"read"}) {
		t.Errorf("merge = %+v", m)
	}
	if m := p.merge(thin, claims(`{"oid":"someone-else","email":"x@t.example"}`)); m.Email != "" {
		t.Errorf("merged another subject's claims: %+v", m)
	}
	// No username: no store username either.
	if u := (Identity{Subject: "kc:o", Provider: "kc"}).User(p.clock()); u.Username != "" || u.Source != "kc" {
		t.Errorf("User() = %+v", u)
	}
}

// TestOwnAddress: a provider keeps addresses in its own domains and in
// domains nobody claims, and loses those another tenant owns, however
// they are written.
func TestOwnAddress(t *testing.T) {
	r, err := NewRealms([]RealmConfig{{Domains: []string{"a.example"}, Provider: "a"}, {Domains: []string{"b.example"}, Provider: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ provider, email, want string }{
		{"a", "sam@a.example", "sam@a.example"},
		{"a", "sam@elsewhere.example", "sam@elsewhere.example"},
		{"a", "", ""},
		{"a", "ceo@b.example", ""},
		{"a", "CEO@B.EXAMPLE", ""},
		{"a", " ceo@b.example ", ""},
		{"a", "x@y@b.example", ""},
		{"b", "ceo@b.example", "ceo@b.example"},
	} {
		if got := r.OwnAddress(tc.provider, tc.email); got != tc.want {
			t.Errorf("OwnAddress(%q, %q) = %q, want %q", tc.provider, tc.email, got, tc.want)
		}
	}
}
