// Package storetest is the conformance suite of the store.Store contract:
// one table of tests that every backend (store/sqlstore on SQLite and on
// PostgreSQL) must pass, so the backends behave the same in every detail
// callers can see.
//
// A backend's test calls Run with a constructor of fresh, empty stores:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
//
// Besides what store.go documents, the suite pins these behaviours:
//   - times come back in UTC, to the microsecond at least (the contract asks
//     for the millisecond); a zero time.Time comes back zero;
//   - list fields (RedirectURIs, Groups, Scopes…) come back non-nil, so nil
//     and empty both read back as an empty slice; ListX results are non-nil
//     and ordered by key (signing keys by ActiveFrom, zero first, then ID);
//   - Create, PutConsent and PutConnection fill a zero CreatedAt with the current time and a
//     zero UpdatedAt with CreatedAt; Update sets UpdatedAt to the current time
//     when the function left it unchanged; an update function may not change
//     the key (that is an error and nothing is written); while one Update's
//     function runs, no other Update of the same row starts its function
//     (the row is locked from the read to the commit, not retried
//     optimistically);
//   - a zero ExpiresAt never expires; a value whose ExpiresAt <= now is
//     expired;
//   - RotateRefreshToken returns the record of oldHash as stored after the
//     call (RotatedAt set on success, RevokedAt set after reuse), with the
//     error too; next.FamilyID "" means the old token's family, another family
//     is an error; checks run in the order revoked, already rotated (reuse),
//     expired;
//   - CreateRefreshToken refuses a token without a FamilyID;
//   - RevokeRefreshTokens and RevokeRefreshFamily revoke every token not yet
//     revoked (rotated ones too) and count those;
//   - usernames are unique, but any number of users may have none, and
//     GetUserByUsername("") is ErrNotFound;
//   - deleting a client or user deletes that row only (callers revoke tokens);
//   - connections are keyed by (UserID, Tenant, Name), exactly (UserID "" is
//     a tenant-wide credential, listed by ListConnections(ctx, "")); their
//     Secret comes back byte for byte; ListConnections is ordered by tenant
//     then name, ListAllConnections by user, tenant, name; PutConnection
//     refuses an empty Name, DeleteUserConnections an empty user ID.
//   - grant revocations are keyed by (UserID, ClientID), exactly (ClientID
//     "" is a key of its own: every client); PutGrantRevocation refuses an
//     empty UserID, fills a zero RevokedAt with the current time and never
//     moves RevokedAt back; ListGrantRevocations is ordered by RevokedAt, then
//     UserID, ClientID, and a zero since lists them all;
//     DeleteGrantRevocationsBefore deletes RevokedAt < before (a zero before
//     deletes none); DeleteExpired leaves revocations alone.
package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/store"
)

// Run runs the whole suite. newStore must return a fresh, empty store for
// each call (each subtest calls it once); Run closes it when the subtest
// ends, and newStore may register its own cleanup (t.Cleanup) to drop what it
// created. Subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"ClientCRUD", testClientCRUD},
		{"ClientDefaults", testClientDefaults},
		{"UpdateClientAtomic", testUpdateClientAtomic},
		{"UpdateErrorLeavesRow", testUpdateErrorLeavesRow},
		{"UpdateCannotChangeKey", testUpdateCannotChangeKey},
		{"UserCRUD", testUserCRUD},
		{"UsernameUnique", testUsernameUnique},
		{"UpdateUserAtomic", testUpdateUserAtomic},
		{"AuthCode", testAuthCode},
		{"AuthCodeExpired", testAuthCodeExpired},
		{"AuthCodeConcurrentConsume", testAuthCodeConcurrentConsume},
		{"RefreshCRUD", testRefreshCRUD},
		{"RefreshRotateChain", testRefreshRotateChain},
		{"RefreshRotateInvalidNext", testRefreshRotateInvalidNext},
		{"RefreshReuseRevokesFamily", testRefreshReuseRevokesFamily},
		{"RefreshConcurrentRotate", testRefreshConcurrentRotate},
		{"RefreshExpired", testRefreshExpired},
		{"RevokeRefreshFamily", testRevokeRefreshFamily},
		{"RevokeRefreshTokens", testRevokeRefreshTokens},
		{"Consents", testConsents},
		{"SigningKeys", testSigningKeys},
		{"ConnectionCRUD", testConnectionCRUD},
		{"ConnectionDefaults", testConnectionDefaults},
		{"ConnectionUpdate", testConnectionUpdate},
		{"ConnectionUpdateAtomic", testConnectionUpdateAtomic},
		{"UpdateSerialises", testUpdateSerialises},
		{"DeleteUserConnections", testDeleteUserConnections},
		{"ConnectionSecretBytes", testConnectionSecretBytes},
		{"VaultCheck", testVaultCheck},
		{"GrantRevocations", testGrantRevocations},
		{"GrantRevocationDefaults", testGrantRevocationDefaults},
		{"DeleteGrantRevocationsBefore", testDeleteGrantRevocationsBefore},
		{"GrantRevocationConcurrent", testGrantRevocationConcurrent},
		{"SealedSecrets", testSealedSecrets},
		{"SealedSecretRace", testSealedSecretRace},
		{"DeleteExpired", testDeleteExpired},
		{"ClientActivity", testClientActivity},
		{"ConnectorInstances", testConnectorInstances},
		{"TimeRoundTrip", testTimeRoundTrip},
		{"EmptySlices", testEmptySlices},
	}
	tests = append(tests, accessTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// base is the suite's clock: millisecond precision, which every backend
// must keep exactly.
var base = time.Date(2025, 6, 1, 12, 0, 0, 123_000_000, time.UTC)

func at(d time.Duration) time.Time { return base.Add(d) }

var errBoom = errors.New("boom")

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

func fullClient(id string) store.Client {
	return store.Client{
		ID:                      id,
		SecretHash:              "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
		SecretExpiresAt:         at(90 * 24 * time.Hour),
		Name:                    "Client " + id,
		Kind:                    store.ClientDynamic,
		RedirectURIs:            []string{"https://app.example/cb", "http://127.0.0.1:8765/cb"},
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		TokenEndpointAuthMethod: "client_secret_basic",
		Scope:                   "mcp:tools mcp:resources",
		JWKS:                    json.RawMessage(`{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b"}]}`),
		JWKSURI:                 "https://app.example/jwks.json",
		Group:                   "agents",
		Metadata:                json.RawMessage(`{"client_name": "x",  "redirect_uris":["https://app.example/cb"], "z":1, "a":2}`),
		CreatedAt:               at(0),
		UpdatedAt:               at(time.Minute),
	}
}

func fullUser(id, username string) store.User {
	return store.User{
		ID:            id,
		Username:      username,
		Email:         username + "@example.com",
		PasswordHash:  "$2b$10$abcdefghijklmnopqrstuuHq1V6u2gU2a2N1rHc5l5M5g5p5s5t5u",
		Tenant:        "acme",
		Groups:        []string{"eng", "ops"},
		Roles:         []string{"admin"},
		Permissions:   []string{"tools:call", "resources:read"},
		Disabled:      false,
		Source:        "config",
		UpstreamToken: "sealed-upstream-token",
		CreatedAt:     at(0),
		UpdatedAt:     at(time.Second),
	}
}

func authCode(hash string) store.AuthCode {
	return store.AuthCode{
		CodeHash:      hash,
		ClientID:      "client-1",
		UserID:        "user-1",
		RedirectURI:   "https://app.example/cb",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		Resource:      "https://gw.example/mcp/demo",
		Scope:         "mcp:tools",
		GrantID:       "grant-" + hash,
		CreatedAt:     at(0),
		ExpiresAt:     at(time.Minute),
	}
}

func refreshToken(hash, family string) store.RefreshToken {
	return store.RefreshToken{
		TokenHash: hash,
		FamilyID:  family,
		ClientID:  "client-1",
		UserID:    "user-1",
		Resource:  "https://gw.example/mcp/demo",
		Scope:     "mcp:tools",
		CreatedAt: at(0),
		ExpiresAt: at(24 * time.Hour),
	}
}

func signingKey(id string, activeFrom time.Time) store.SigningKey {
	return store.SigningKey{
		ID:         id,
		Algorithm:  "ES256",
		Private:    []byte(`{"kty":"EC","crv":"P-256","d":"secret","kid":"` + id + `"}`),
		CreatedAt:  at(0),
		ActiveFrom: activeFrom,
	}
}

// ---------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------

// equal compares two values field by field: times with Equal (and they must
// be UTC), byte slices and json.RawMessage by content (nil == empty), other
// slices element-wise (nil == empty; the EmptySlices test checks non-nil).
func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	var diffs []string
	diff(&diffs, what, reflect.ValueOf(got), reflect.ValueOf(want))
	for _, d := range diffs {
		t.Error(d)
	}
}

var timeType = reflect.TypeOf(time.Time{})

func diff(out *[]string, path string, got, want reflect.Value) {
	if got.Type() != want.Type() {
		*out = append(*out, fmt.Sprintf("%s: type %s, want %s", path, got.Type(), want.Type()))
		return
	}
	switch {
	case got.Type() == timeType:
		g, w := got.Interface().(time.Time), want.Interface().(time.Time)
		if !g.Equal(w) {
			*out = append(*out, fmt.Sprintf("%s = %s, want %s", path, fmtTime(g), fmtTime(w)))
		} else if !g.IsZero() && g.Location() != time.UTC {
			*out = append(*out, fmt.Sprintf("%s = %s: location %q, want UTC", path, fmtTime(g), g.Location()))
		}
	case got.Kind() == reflect.Struct:
		for i := 0; i < got.NumField(); i++ {
			diff(out, path+"."+got.Type().Field(i).Name, got.Field(i), want.Field(i))
		}
	case got.Kind() == reflect.Slice && got.Type().Elem().Kind() == reflect.Uint8:
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			*out = append(*out, fmt.Sprintf("%s = %q, want %q", path, got.Bytes(), want.Bytes()))
		}
	case got.Kind() == reflect.Slice:
		if got.Len() != want.Len() {
			*out = append(*out, fmt.Sprintf("%s: len %d, want %d (%v, want %v)", path, got.Len(), want.Len(), got, want))
			return
		}
		for i := 0; i < got.Len(); i++ {
			diff(out, fmt.Sprintf("%s[%d]", path, i), got.Index(i), want.Index(i))
		}
	default:
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			*out = append(*out, fmt.Sprintf("%s = %#v, want %#v", path, got.Interface(), want.Interface()))
		}
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.Format(time.RFC3339Nano)
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

func testClientCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	list, err := s.ListClients(ctx)
	must(t, err, "ListClients on an empty store")
	if list == nil || len(list) != 0 {
		t.Fatalf("ListClients on an empty store = %#v, want empty non-nil", list)
	}
	_, err = s.GetClient(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, "GetClient(unknown)")

	b := fullClient("b-client")
	a := fullClient("https://a.example/client.json")
	a.Kind = store.ClientMetadata
	must(t, s.CreateClient(ctx, b), "CreateClient b")
	must(t, s.CreateClient(ctx, a), "CreateClient a")
	dup := fullClient("b-client")
	dup.Name = "other"
	wantErr(t, s.CreateClient(ctx, dup), store.ErrAlreadyExists, "CreateClient(duplicate)")

	got, err := s.GetClient(ctx, "b-client")
	must(t, err, "GetClient")
	equal(t, "client", got, b)

	list, err = s.ListClients(ctx)
	must(t, err, "ListClients")
	equal(t, "clients", list, []store.Client{b, a}) // byte order: "b" < "h"

	must(t, s.UpdateClient(ctx, "b-client", func(c store.Client) (store.Client, error) {
		c.Name = "renamed"
		c.RedirectURIs = append(c.RedirectURIs, "https://app.example/cb2")
		c.SecretHash = ""
		c.SecretExpiresAt = time.Time{}
		c.JWKS = nil
		c.UpdatedAt = at(time.Hour)
		return c, nil
	}), "UpdateClient")
	want := b
	want.Name = "renamed"
	want.RedirectURIs = []string{"https://app.example/cb", "http://127.0.0.1:8765/cb", "https://app.example/cb2"}
	want.SecretHash = ""
	want.SecretExpiresAt = time.Time{}
	want.JWKS = nil
	want.UpdatedAt = at(time.Hour)
	got, err = s.GetClient(ctx, "b-client")
	must(t, err, "GetClient after update")
	equal(t, "updated client", got, want)

	called := false
	err = s.UpdateClient(ctx, "nope", func(c store.Client) (store.Client, error) { called = true; return c, nil })
	wantErr(t, err, store.ErrNotFound, "UpdateClient(unknown)")
	if called {
		t.Error("UpdateClient(unknown) called the update function")
	}

	must(t, s.DeleteClient(ctx, "b-client"), "DeleteClient")
	wantErr(t, s.DeleteClient(ctx, "b-client"), store.ErrNotFound, "DeleteClient again")
	_, err = s.GetClient(ctx, "b-client")
	wantErr(t, err, store.ErrNotFound, "GetClient after delete")
	list, err = s.ListClients(ctx)
	must(t, err, "ListClients after delete")
	equal(t, "clients after delete", list, []store.Client{a})

	// The ID is free again.
	must(t, s.CreateClient(ctx, b), "CreateClient after delete")
}

func testClientDefaults(t *testing.T, s store.Store) {
	ctx := t.Context()
	before := time.Now().Add(-time.Millisecond)
	must(t, s.CreateClient(ctx, store.Client{ID: "c", Kind: store.ClientStatic}), "CreateClient")
	got, err := s.GetClient(ctx, "c")
	must(t, err, "GetClient")
	after := time.Now().Add(time.Millisecond)
	if got.CreatedAt.Before(before) || got.CreatedAt.After(after) {
		t.Errorf("CreatedAt = %s, want the time of CreateClient (%s..%s)", fmtTime(got.CreatedAt), fmtTime(before), fmtTime(after))
	}
	if !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Errorf("UpdatedAt = %s, want CreatedAt %s", fmtTime(got.UpdatedAt), fmtTime(got.CreatedAt))
	}

	// An update that leaves UpdatedAt alone gets the current time.
	must(t, s.CreateClient(ctx, fullClient("d")), "CreateClient d")
	before = time.Now().Add(-time.Millisecond)
	must(t, s.UpdateClient(ctx, "d", func(c store.Client) (store.Client, error) {
		c.Scope = "more"
		return c, nil
	}), "UpdateClient")
	got, err = s.GetClient(ctx, "d")
	must(t, err, "GetClient d")
	if got.UpdatedAt.Before(before) {
		t.Errorf("UpdatedAt after update = %s, want >= %s", fmtTime(got.UpdatedAt), fmtTime(before))
	}
	if !got.CreatedAt.Equal(at(0)) {
		t.Errorf("CreatedAt after update = %s, want %s", fmtTime(got.CreatedAt), fmtTime(at(0)))
	}
}

func testUpdateClientAtomic(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := fullClient("counter")
	c.Name = "0"
	must(t, s.CreateClient(ctx, c), "CreateClient")
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			errs <- s.UpdateClient(ctx, "counter", func(c store.Client) (store.Client, error) {
				v, err := strconv.Atoi(c.Name)
				if err != nil {
					return c, err
				}
				c.Name = strconv.Itoa(v + 1)
				c.RedirectURIs = append(c.RedirectURIs, "https://app.example/"+c.Name)
				return c, nil
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err, "concurrent UpdateClient")
	}
	got, err := s.GetClient(ctx, "counter")
	must(t, err, "GetClient")
	if got.Name != strconv.Itoa(n) {
		t.Errorf("after %d concurrent increments Name = %q, want %q (lost updates)", n, got.Name, strconv.Itoa(n))
	}
	if want := 2 + n; len(got.RedirectURIs) != want {
		t.Errorf("len(RedirectURIs) = %d, want %d", len(got.RedirectURIs), want)
	}
}

func testUpdateErrorLeavesRow(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := fullClient("c")
	must(t, s.CreateClient(ctx, c), "CreateClient")
	err := s.UpdateClient(ctx, "c", func(c store.Client) (store.Client, error) {
		c.Name = "changed"
		c.RedirectURIs[0] = "https://evil.example/cb" // mutating in place must not leak either
		return c, errBoom
	})
	wantErr(t, err, errBoom, "UpdateClient returning an error")
	got, err := s.GetClient(ctx, "c")
	must(t, err, "GetClient")
	equal(t, "client after failed update", got, c)

	u := fullUser("u", "alice")
	must(t, s.CreateUser(ctx, u), "CreateUser")
	err = s.UpdateUser(ctx, "u", func(u store.User) (store.User, error) {
		u.Disabled = true
		u.Groups = nil
		return u, errBoom
	})
	wantErr(t, err, errBoom, "UpdateUser returning an error")
	gotU, err := s.GetUser(ctx, "u")
	must(t, err, "GetUser")
	equal(t, "user after failed update", gotU, u)

	k := signingKey("k1", at(0))
	must(t, s.CreateSigningKey(ctx, k), "CreateSigningKey")
	err = s.UpdateSigningKey(ctx, "k1", func(k store.SigningKey) (store.SigningKey, error) {
		k.RetiredAt = at(time.Hour)
		return k, errBoom
	})
	wantErr(t, err, errBoom, "UpdateSigningKey returning an error")
	keys, err := s.ListSigningKeys(ctx)
	must(t, err, "ListSigningKeys")
	equal(t, "keys after failed update", keys, []store.SigningKey{k})
}

func testUpdateCannotChangeKey(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := fullClient("c")
	must(t, s.CreateClient(ctx, c), "CreateClient")
	err := s.UpdateClient(ctx, "c", func(c store.Client) (store.Client, error) {
		c.ID = "other"
		return c, nil
	})
	if err == nil {
		t.Error("UpdateClient changing the ID: no error")
	}
	_, err = s.GetClient(ctx, "other")
	wantErr(t, err, store.ErrNotFound, "GetClient(new ID)")
	got, err := s.GetClient(ctx, "c")
	must(t, err, "GetClient")
	equal(t, "client", got, c)

	u := fullUser("u", "alice")
	must(t, s.CreateUser(ctx, u), "CreateUser")
	if err := s.UpdateUser(ctx, "u", func(u store.User) (store.User, error) { u.ID = "v"; return u, nil }); err == nil {
		t.Error("UpdateUser changing the ID: no error")
	}
	k := signingKey("k", at(0))
	must(t, s.CreateSigningKey(ctx, k), "CreateSigningKey")
	if err := s.UpdateSigningKey(ctx, "k", func(k store.SigningKey) (store.SigningKey, error) { k.ID = "k2"; return k, nil }); err == nil {
		t.Error("UpdateSigningKey changing the ID: no error")
	}
	keys, err := s.ListSigningKeys(ctx)
	must(t, err, "ListSigningKeys")
	equal(t, "keys", keys, []store.SigningKey{k})
}

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

func testUserCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	list, err := s.ListUsers(ctx)
	must(t, err, "ListUsers on an empty store")
	if list == nil || len(list) != 0 {
		t.Fatalf("ListUsers on an empty store = %#v, want empty non-nil", list)
	}
	_, err = s.GetUser(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, "GetUser(unknown)")
	_, err = s.GetUserByUsername(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, "GetUserByUsername(unknown)")

	bob := fullUser("u2", "bob")
	alice := fullUser("u1", "alice")
	alice.Disabled = true
	alice.PasswordHash = ""
	must(t, s.CreateUser(ctx, bob), "CreateUser bob")
	must(t, s.CreateUser(ctx, alice), "CreateUser alice")
	dup := fullUser("u1", "carol")
	wantErr(t, s.CreateUser(ctx, dup), store.ErrAlreadyExists, "CreateUser(duplicate ID)")

	got, err := s.GetUser(ctx, "u1")
	must(t, err, "GetUser")
	equal(t, "user", got, alice)
	got, err = s.GetUserByUsername(ctx, "bob")
	must(t, err, "GetUserByUsername")
	equal(t, "user by username", got, bob)
	_, err = s.GetUserByUsername(ctx, "Bob")
	wantErr(t, err, store.ErrNotFound, "GetUserByUsername is exact (case)")

	list, err = s.ListUsers(ctx)
	must(t, err, "ListUsers")
	equal(t, "users", list, []store.User{alice, bob})

	must(t, s.UpdateUser(ctx, "u2", func(u store.User) (store.User, error) {
		u.Username = "robert"
		u.Disabled = true
		u.Roles = []string{"viewer"}
		u.UpdatedAt = at(time.Hour)
		return u, nil
	}), "UpdateUser")
	want := bob
	want.Username = "robert"
	want.Disabled = true
	want.Roles = []string{"viewer"}
	want.UpdatedAt = at(time.Hour)
	got, err = s.GetUserByUsername(ctx, "robert")
	must(t, err, "GetUserByUsername(new name)")
	equal(t, "updated user", got, want)
	_, err = s.GetUserByUsername(ctx, "bob")
	wantErr(t, err, store.ErrNotFound, "GetUserByUsername(old name)")
	// The old name is free again.
	must(t, s.CreateUser(ctx, fullUser("u3", "bob")), "CreateUser with a freed username")

	err = s.UpdateUser(ctx, "nope", func(u store.User) (store.User, error) { return u, nil })
	wantErr(t, err, store.ErrNotFound, "UpdateUser(unknown)")

	must(t, s.DeleteUser(ctx, "u1"), "DeleteUser")
	wantErr(t, s.DeleteUser(ctx, "u1"), store.ErrNotFound, "DeleteUser again")
	_, err = s.GetUser(ctx, "u1")
	wantErr(t, err, store.ErrNotFound, "GetUser after delete")
	_, err = s.GetUserByUsername(ctx, "alice")
	wantErr(t, err, store.ErrNotFound, "GetUserByUsername after delete")
}

func testUsernameUnique(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, fullUser("u1", "alice")), "CreateUser alice")
	must(t, s.CreateUser(ctx, fullUser("u2", "bob")), "CreateUser bob")
	wantErr(t, s.CreateUser(ctx, fullUser("u3", "alice")), store.ErrAlreadyExists, "CreateUser(duplicate username)")
	_, err := s.GetUser(ctx, "u3")
	wantErr(t, err, store.ErrNotFound, "GetUser after a rejected create")

	err = s.UpdateUser(ctx, "u2", func(u store.User) (store.User, error) { u.Username = "alice"; return u, nil })
	wantErr(t, err, store.ErrAlreadyExists, "UpdateUser to a taken username")
	got, err := s.GetUser(ctx, "u2")
	must(t, err, "GetUser")
	if got.Username != "bob" {
		t.Errorf("username after a rejected rename = %q, want bob", got.Username)
	}

	// Users without a username (from an identity provider) do not collide.
	for _, id := range []string{"idp-1", "idp-2"} {
		u := fullUser(id, "")
		u.Source = "okta"
		must(t, s.CreateUser(ctx, u), "CreateUser without a username")
		got, err := s.GetUser(ctx, id)
		must(t, err, "GetUser without a username")
		equal(t, "user without a username", got, u)
	}
	_, err = s.GetUserByUsername(ctx, "")
	wantErr(t, err, store.ErrNotFound, `GetUserByUsername("")`)
}

func testUpdateUserAtomic(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, fullUser("u", "alice")), "CreateUser")
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- s.UpdateUser(ctx, "u", func(u store.User) (store.User, error) {
				u.Permissions = append(u.Permissions, "p"+strconv.Itoa(i))
				return u, nil
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err, "concurrent UpdateUser")
	}
	got, err := s.GetUser(ctx, "u")
	must(t, err, "GetUser")
	if want := 2 + n; len(got.Permissions) != want {
		t.Errorf("len(Permissions) = %d after %d concurrent appends, want %d (lost updates)", len(got.Permissions), n, want)
	}
}

// ---------------------------------------------------------------------------
// Authorization codes
// ---------------------------------------------------------------------------

func testAuthCode(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.ConsumeAuthCode(ctx, "nope", at(0))
	wantErr(t, err, store.ErrNotFound, "ConsumeAuthCode(unknown)")

	c := authCode("h1")
	must(t, s.CreateAuthCode(ctx, c), "CreateAuthCode")
	wantErr(t, s.CreateAuthCode(ctx, authCode("h1")), store.ErrAlreadyExists, "CreateAuthCode(duplicate)")

	got, err := s.ConsumeAuthCode(ctx, "h1", at(10*time.Second))
	must(t, err, "ConsumeAuthCode")
	want := c
	want.UsedAt = at(10 * time.Second)
	equal(t, "consumed code", got, want)

	got, err = s.ConsumeAuthCode(ctx, "h1", at(20*time.Second))
	wantErr(t, err, store.ErrAlreadyUsed, "ConsumeAuthCode again")
	equal(t, "code returned with ErrAlreadyUsed", got, want) // first UsedAt kept

	// A replay after expiry still reports the reuse (the grant must go).
	_, err = s.ConsumeAuthCode(ctx, "h1", at(time.Hour))
	wantErr(t, err, store.ErrAlreadyUsed, "ConsumeAuthCode again after expiry")
}

func testAuthCodeExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := authCode("h1")
	must(t, s.CreateAuthCode(ctx, c), "CreateAuthCode")
	_, err := s.ConsumeAuthCode(ctx, "h1", c.ExpiresAt) // ExpiresAt itself is past
	wantErr(t, err, store.ErrExpired, "ConsumeAuthCode at ExpiresAt")
	_, err = s.ConsumeAuthCode(ctx, "h1", at(time.Hour))
	wantErr(t, err, store.ErrExpired, "ConsumeAuthCode after ExpiresAt")
	// The expired attempts did not use it.
	_, err = s.ConsumeAuthCode(ctx, "h1", c.ExpiresAt.Add(-time.Millisecond))
	must(t, err, "ConsumeAuthCode just before ExpiresAt")

	// A zero ExpiresAt never expires.
	n := authCode("h2")
	n.ExpiresAt = time.Time{}
	must(t, s.CreateAuthCode(ctx, n), "CreateAuthCode without expiry")
	got, err := s.ConsumeAuthCode(ctx, "h2", at(1000*time.Hour))
	must(t, err, "ConsumeAuthCode without expiry")
	if !got.ExpiresAt.IsZero() {
		t.Errorf("ExpiresAt = %s, want zero", fmtTime(got.ExpiresAt))
	}
}

func testAuthCodeConcurrentConsume(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := authCode("h1")
	must(t, s.CreateAuthCode(ctx, c), "CreateAuthCode")
	const n = 20
	type result struct {
		code store.AuthCode
		err  error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			code, err := s.ConsumeAuthCode(ctx, "h1", at(time.Duration(i+1)*time.Millisecond))
			results <- result{code, err}
		})
	}
	wg.Wait()
	close(results)
	wins := 0
	var usedAt time.Time
	var losers []store.AuthCode
	for r := range results {
		switch {
		case r.err == nil:
			wins++
			usedAt = r.code.UsedAt
		case errors.Is(r.err, store.ErrAlreadyUsed):
			losers = append(losers, r.code)
		default:
			t.Errorf("ConsumeAuthCode: %v, want nil or ErrAlreadyUsed", r.err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d concurrent redemptions succeeded, want exactly 1", wins, n)
	}
	for _, l := range losers {
		want := c
		want.UsedAt = usedAt
		equal(t, "code returned to a losing redemption", l, want)
	}
}

// ---------------------------------------------------------------------------
// Refresh tokens
// ---------------------------------------------------------------------------

func testRefreshCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.GetRefreshToken(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, "GetRefreshToken(unknown)")
	rt := refreshToken("t1", "f1")
	must(t, s.CreateRefreshToken(ctx, rt), "CreateRefreshToken")
	wantErr(t, s.CreateRefreshToken(ctx, refreshToken("t1", "f2")), store.ErrAlreadyExists, "CreateRefreshToken(duplicate)")
	got, err := s.GetRefreshToken(ctx, "t1")
	must(t, err, "GetRefreshToken")
	equal(t, "refresh token", got, rt)

	if err := s.CreateRefreshToken(ctx, refreshToken("t2", "")); err == nil {
		t.Error("CreateRefreshToken without a family: no error")
	}
	_, err = s.GetRefreshToken(ctx, "t2")
	wantErr(t, err, store.ErrNotFound, "GetRefreshToken(refused token)")
}

func testRefreshRotateChain(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.RotateRefreshToken(ctx, "nope", refreshToken("x", "f"), at(0))
	wantErr(t, err, store.ErrNotFound, "RotateRefreshToken(unknown)")
	_, err = s.GetRefreshToken(ctx, "x")
	wantErr(t, err, store.ErrNotFound, "next after a failed rotation")

	t0 := refreshToken("t0", "fam")
	must(t, s.CreateRefreshToken(ctx, t0), "CreateRefreshToken")

	t1 := refreshToken("t1", "fam")
	t1.CreatedAt = at(time.Minute)
	t1.ExpiresAt = at(25 * time.Hour)
	t1.Scope = "mcp:tools:read" // narrowed by the caller
	old, err := s.RotateRefreshToken(ctx, "t0", t1, at(time.Minute))
	must(t, err, "RotateRefreshToken t0→t1")
	want0 := t0
	want0.RotatedAt = at(time.Minute)
	equal(t, "rotated token returned", old, want0)
	got, err := s.GetRefreshToken(ctx, "t0")
	must(t, err, "GetRefreshToken t0")
	equal(t, "t0 after rotation", got, want0)
	got, err = s.GetRefreshToken(ctx, "t1")
	must(t, err, "GetRefreshToken t1")
	equal(t, "t1", got, t1)

	// FamilyID "" means the old token's family.
	t2 := refreshToken("t2", "")
	t2.CreatedAt = at(2 * time.Minute)
	_, err = s.RotateRefreshToken(ctx, "t1", t2, at(2*time.Minute))
	must(t, err, "RotateRefreshToken t1→t2")
	got, err = s.GetRefreshToken(ctx, "t2")
	must(t, err, "GetRefreshToken t2")
	want2 := t2
	want2.FamilyID = "fam"
	equal(t, "t2", got, want2)
	got, err = s.GetRefreshToken(ctx, "t1")
	must(t, err, "GetRefreshToken t1")
	if !got.RotatedAt.Equal(at(2*time.Minute)) || !got.RevokedAt.IsZero() {
		t.Errorf("t1: RotatedAt %s RevokedAt %s, want rotated at %s, not revoked", fmtTime(got.RotatedAt), fmtTime(got.RevokedAt), fmtTime(at(2*time.Minute)))
	}

	// The newest token rotates on.
	_, err = s.RotateRefreshToken(ctx, "t2", refreshToken("t3", "fam"), at(3*time.Minute))
	must(t, err, "RotateRefreshToken t2→t3")
}

func testRefreshRotateInvalidNext(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateRefreshToken(ctx, refreshToken("t0", "fam")), "CreateRefreshToken t0")
	must(t, s.CreateRefreshToken(ctx, refreshToken("other", "fam2")), "CreateRefreshToken other")

	// next in another family: refused, nothing changes.
	_, err := s.RotateRefreshToken(ctx, "t0", refreshToken("t1", "fam2"), at(time.Minute))
	if err == nil {
		t.Fatal("RotateRefreshToken with next in another family: no error")
	}
	// next's hash taken: ErrAlreadyExists, nothing changes.
	_, err = s.RotateRefreshToken(ctx, "t0", refreshToken("other", "fam"), at(time.Minute))
	wantErr(t, err, store.ErrAlreadyExists, "RotateRefreshToken with a taken next hash")

	got, err := s.GetRefreshToken(ctx, "t0")
	must(t, err, "GetRefreshToken t0")
	equal(t, "t0 after refused rotations", got, refreshToken("t0", "fam"))
	_, err = s.GetRefreshToken(ctx, "t1")
	wantErr(t, err, store.ErrNotFound, "t1 after a refused rotation")
	got, err = s.GetRefreshToken(ctx, "other")
	must(t, err, "GetRefreshToken other")
	equal(t, "other", got, refreshToken("other", "fam2"))

	// And t0 still rotates.
	_, err = s.RotateRefreshToken(ctx, "t0", refreshToken("t1", "fam"), at(time.Minute))
	must(t, err, "RotateRefreshToken after refused ones")
}

func testRefreshReuseRevokesFamily(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateRefreshToken(ctx, refreshToken("t0", "fam")), "CreateRefreshToken t0")
	must(t, s.CreateRefreshToken(ctx, refreshToken("x0", "other")), "CreateRefreshToken x0")
	_, err := s.RotateRefreshToken(ctx, "t0", refreshToken("t1", "fam"), at(time.Minute))
	must(t, err, "rotate t0→t1")
	_, err = s.RotateRefreshToken(ctx, "t1", refreshToken("t2", "fam"), at(2*time.Minute))
	must(t, err, "rotate t1→t2")

	// t0 again: reuse.
	now := at(3 * time.Minute)
	old, err := s.RotateRefreshToken(ctx, "t0", refreshToken("evil", "fam"), now)
	wantErr(t, err, store.ErrAlreadyUsed, "RotateRefreshToken(rotated token)")
	if old.TokenHash != "t0" || old.FamilyID != "fam" || !old.RotatedAt.Equal(at(time.Minute)) || !old.RevokedAt.Equal(now) {
		t.Errorf("record returned with ErrAlreadyUsed = %+v, want t0 of fam, rotated at %s, revoked at %s", old, fmtTime(at(time.Minute)), fmtTime(now))
	}
	_, err = s.GetRefreshToken(ctx, "evil")
	wantErr(t, err, store.ErrNotFound, "next of a reused token")

	for _, h := range []string{"t0", "t1", "t2"} {
		got, err := s.GetRefreshToken(ctx, h)
		must(t, err, "GetRefreshToken "+h)
		if !got.RevokedAt.Equal(now) {
			t.Errorf("%s.RevokedAt = %s after reuse, want %s", h, fmtTime(got.RevokedAt), fmtTime(now))
		}
	}
	// Even the newest token is dead now.
	_, err = s.RotateRefreshToken(ctx, "t2", refreshToken("t3", "fam"), at(4*time.Minute))
	wantErr(t, err, store.ErrRevoked, "RotateRefreshToken(newest token after reuse)")
	_, err = s.RotateRefreshToken(ctx, "t0", refreshToken("t3", "fam"), at(4*time.Minute))
	wantErr(t, err, store.ErrRevoked, "RotateRefreshToken(reused token again)")

	// Other families are untouched.
	got, err := s.GetRefreshToken(ctx, "x0")
	must(t, err, "GetRefreshToken x0")
	equal(t, "token of another family", got, refreshToken("x0", "other"))
}

func testRefreshConcurrentRotate(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateRefreshToken(ctx, refreshToken("t0", "fam")), "CreateRefreshToken")
	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.RotateRefreshToken(ctx, "t0", refreshToken("next-"+strconv.Itoa(i), "fam"), at(time.Minute))
		})
	}
	wg.Wait()
	winner, reuses := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("rotations %d and %d of the same token both succeeded", winner, i)
			}
			winner = i
		case errors.Is(err, store.ErrAlreadyUsed):
			reuses++
		case errors.Is(err, store.ErrRevoked): // after another loser revoked the family
		default:
			t.Errorf("rotation %d: %v, want nil, ErrAlreadyUsed or ErrRevoked", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("none of %d concurrent rotations succeeded: %v", n, errs)
	}
	if reuses == 0 {
		t.Errorf("no rotation reported ErrAlreadyUsed: %v", errs)
	}
	// The losers presented a rotated token: the family is revoked, the
	// winner's new token included.
	got, err := s.GetRefreshToken(ctx, "next-"+strconv.Itoa(winner))
	must(t, err, "GetRefreshToken(winner's next)")
	if got.RevokedAt.IsZero() {
		t.Error("the winner's new token is not revoked after the concurrent reuse")
	}
	for i := range n {
		if i == winner {
			continue
		}
		_, err := s.GetRefreshToken(ctx, "next-"+strconv.Itoa(i))
		wantErr(t, err, store.ErrNotFound, "next of a losing rotation")
	}
}

func testRefreshExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	rt := refreshToken("t0", "fam")
	must(t, s.CreateRefreshToken(ctx, rt), "CreateRefreshToken")
	_, err := s.RotateRefreshToken(ctx, "t0", refreshToken("t1", "fam"), rt.ExpiresAt)
	wantErr(t, err, store.ErrExpired, "RotateRefreshToken at ExpiresAt")
	_, err = s.GetRefreshToken(ctx, "t1")
	wantErr(t, err, store.ErrNotFound, "next of an expired token")
	got, err := s.GetRefreshToken(ctx, "t0")
	must(t, err, "GetRefreshToken")
	equal(t, "expired token", got, rt)

	n := refreshToken("n0", "fam2")
	n.ExpiresAt = time.Time{}
	must(t, s.CreateRefreshToken(ctx, n), "CreateRefreshToken without expiry")
	_, err = s.RotateRefreshToken(ctx, "n0", refreshToken("n1", "fam2"), at(10000*time.Hour))
	must(t, err, "RotateRefreshToken without expiry")
}

func testRevokeRefreshFamily(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, s.CreateRefreshToken(ctx, refreshToken("a0", "fa")), "create a0")
	must(t, s.CreateRefreshToken(ctx, refreshToken("b0", "fb")), "create b0")
	_, err := s.RotateRefreshToken(ctx, "a0", refreshToken("a1", "fa"), at(time.Minute))
	must(t, err, "rotate a0→a1")

	must(t, s.RevokeRefreshFamily(ctx, "fa", at(time.Hour)), "RevokeRefreshFamily")
	for _, h := range []string{"a0", "a1"} {
		got, err := s.GetRefreshToken(ctx, h)
		must(t, err, "GetRefreshToken "+h)
		if !got.RevokedAt.Equal(at(time.Hour)) {
			t.Errorf("%s.RevokedAt = %s, want %s", h, fmtTime(got.RevokedAt), fmtTime(at(time.Hour)))
		}
	}
	_, err = s.RotateRefreshToken(ctx, "a1", refreshToken("a2", "fa"), at(2*time.Hour))
	wantErr(t, err, store.ErrRevoked, "RotateRefreshToken(revoked)")

	// Revoking again keeps the first time; unknown families are no error.
	must(t, s.RevokeRefreshFamily(ctx, "fa", at(3*time.Hour)), "RevokeRefreshFamily again")
	got, err := s.GetRefreshToken(ctx, "a1")
	must(t, err, "GetRefreshToken a1")
	if !got.RevokedAt.Equal(at(time.Hour)) {
		t.Errorf("RevokedAt after a second revocation = %s, want the first %s", fmtTime(got.RevokedAt), fmtTime(at(time.Hour)))
	}
	must(t, s.RevokeRefreshFamily(ctx, "nope", at(time.Hour)), "RevokeRefreshFamily(unknown)")

	got, err = s.GetRefreshToken(ctx, "b0")
	must(t, err, "GetRefreshToken b0")
	equal(t, "token of another family", got, refreshToken("b0", "fb"))
}

func testRevokeRefreshTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	mk := func(hash, family, user, client string) {
		rt := refreshToken(hash, family)
		rt.UserID, rt.ClientID = user, client
		must(t, s.CreateRefreshToken(ctx, rt), "CreateRefreshToken "+hash)
	}
	mk("u1c1a", "f1", "u1", "c1")
	mk("u1c1b", "f2", "u1", "c1")
	mk("u1c2", "f3", "u1", "c2")
	mk("u2c1", "f4", "u2", "c1")

	n, err := s.RevokeRefreshTokens(ctx, "u1", "c1", at(time.Hour))
	must(t, err, "RevokeRefreshTokens(u1, c1)")
	if n != 2 {
		t.Errorf("RevokeRefreshTokens(u1, c1) = %d, want 2", n)
	}
	check := func(hash string, revoked bool) {
		t.Helper()
		got, err := s.GetRefreshToken(ctx, hash)
		must(t, err, "GetRefreshToken "+hash)
		if got.RevokedAt.IsZero() == revoked {
			t.Errorf("%s.RevokedAt = %s, want revoked=%v", hash, fmtTime(got.RevokedAt), revoked)
		}
	}
	check("u1c1a", true)
	check("u1c1b", true)
	check("u1c2", false)
	check("u2c1", false)
	_, err = s.RotateRefreshToken(ctx, "u1c1a", refreshToken("next", "f1"), at(2*time.Hour))
	wantErr(t, err, store.ErrRevoked, "RotateRefreshToken(revoked by user/client)")

	n, err = s.RevokeRefreshTokens(ctx, "u1", "", at(2*time.Hour))
	must(t, err, `RevokeRefreshTokens(u1, "")`)
	if n != 1 {
		t.Errorf(`RevokeRefreshTokens(u1, "") = %d, want 1 (the others were revoked already)`, n)
	}
	check("u1c2", true)
	check("u2c1", false)
	n, err = s.RevokeRefreshTokens(ctx, "u1", "", at(3*time.Hour))
	must(t, err, "RevokeRefreshTokens again")
	if n != 0 {
		t.Errorf("RevokeRefreshTokens again = %d, want 0", n)
	}
	n, err = s.RevokeRefreshTokens(ctx, "nobody", "", at(3*time.Hour))
	must(t, err, "RevokeRefreshTokens(unknown user)")
	if n != 0 {
		t.Errorf("RevokeRefreshTokens(unknown user) = %d, want 0", n)
	}
}

// ---------------------------------------------------------------------------
// Consents
// ---------------------------------------------------------------------------

func testConsents(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.GetConsent(ctx, "u1", "c1")
	wantErr(t, err, store.ErrNotFound, "GetConsent(unknown)")
	list, err := s.ListConsents(ctx, "u1")
	must(t, err, "ListConsents(none)")
	if list == nil || len(list) != 0 {
		t.Fatalf("ListConsents(none) = %#v, want empty non-nil", list)
	}

	c2 := store.Consent{UserID: "u1", ClientID: "c2", Scopes: []string{"mcp:tools"}, Resources: []string{"https://gw.example/mcp/a"}, CreatedAt: at(0), UpdatedAt: at(0)}
	c1 := store.Consent{UserID: "u1", ClientID: "c1", Scopes: []string{"a", "b"}, Resources: []string{"https://gw.example/mcp/b"}, CreatedAt: at(time.Second), UpdatedAt: at(time.Second)}
	other := store.Consent{UserID: "u2", ClientID: "c1", Scopes: []string{"x"}, CreatedAt: at(0), UpdatedAt: at(0)}
	for _, c := range []store.Consent{c2, c1, other} {
		must(t, s.PutConsent(ctx, c), "PutConsent")
	}
	got, err := s.GetConsent(ctx, "u1", "c1")
	must(t, err, "GetConsent")
	equal(t, "consent", got, c1)
	list, err = s.ListConsents(ctx, "u1")
	must(t, err, "ListConsents")
	equal(t, "consents of u1", list, []store.Consent{c1, c2})

	// Put again replaces, keeping CreatedAt.
	upd := c1
	upd.Scopes = []string{"a", "b", "c"}
	upd.Resources = nil
	upd.CreatedAt = at(time.Hour) // ignored: the consent exists
	upd.UpdatedAt = at(time.Hour)
	must(t, s.PutConsent(ctx, upd), "PutConsent (replace)")
	got, err = s.GetConsent(ctx, "u1", "c1")
	must(t, err, "GetConsent after replace")
	want := upd
	want.CreatedAt = c1.CreatedAt
	want.Resources = []string{}
	equal(t, "replaced consent", got, want)

	// A zero UpdatedAt on replace means now.
	before := time.Now().Add(-time.Millisecond)
	upd.UpdatedAt = time.Time{}
	must(t, s.PutConsent(ctx, upd), "PutConsent (replace, zero UpdatedAt)")
	got, err = s.GetConsent(ctx, "u1", "c1")
	must(t, err, "GetConsent")
	if got.UpdatedAt.Before(before) || !got.CreatedAt.Equal(c1.CreatedAt) {
		t.Errorf("after PutConsent with zero UpdatedAt: CreatedAt %s UpdatedAt %s, want CreatedAt %s, UpdatedAt now",
			fmtTime(got.CreatedAt), fmtTime(got.UpdatedAt), fmtTime(c1.CreatedAt))
	}

	must(t, s.DeleteConsent(ctx, "u1", "c1"), "DeleteConsent")
	wantErr(t, s.DeleteConsent(ctx, "u1", "c1"), store.ErrNotFound, "DeleteConsent again")
	_, err = s.GetConsent(ctx, "u1", "c1")
	wantErr(t, err, store.ErrNotFound, "GetConsent after delete")
	list, err = s.ListConsents(ctx, "u1")
	must(t, err, "ListConsents after delete")
	equal(t, "consents of u1 after delete", list, []store.Consent{c2})
	got, err = s.GetConsent(ctx, "u2", "c1")
	must(t, err, "GetConsent of another user")
	equal(t, "consent of another user", got, other)
}

// ---------------------------------------------------------------------------
// Signing keys
// ---------------------------------------------------------------------------

func testSigningKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	keys, err := s.ListSigningKeys(ctx)
	must(t, err, "ListSigningKeys(none)")
	if keys == nil || len(keys) != 0 {
		t.Fatalf("ListSigningKeys(none) = %#v, want empty non-nil", keys)
	}

	k2 := signingKey("k2", at(time.Hour))
	k2.ExpiresAt = at(100 * time.Hour)
	k1 := signingKey("k1", at(0))
	k1.RetiredAt = at(time.Hour)
	k3 := signingKey("k0", at(time.Hour)) // same ActiveFrom as k2: by ID
	k3.Algorithm = "RS256"
	k3.Private = []byte{0, 1, 2, 0xff, 0xfe} // not text
	for _, k := range []store.SigningKey{k2, k1, k3} {
		must(t, s.CreateSigningKey(ctx, k), "CreateSigningKey "+k.ID)
	}
	wantErr(t, s.CreateSigningKey(ctx, signingKey("k1", at(0))), store.ErrAlreadyExists, "CreateSigningKey(duplicate)")
	keys, err = s.ListSigningKeys(ctx)
	must(t, err, "ListSigningKeys")
	equal(t, "keys", keys, []store.SigningKey{k1, k3, k2})

	must(t, s.UpdateSigningKey(ctx, "k2", func(k store.SigningKey) (store.SigningKey, error) {
		k.RetiredAt = at(50 * time.Hour)
		return k, nil
	}), "UpdateSigningKey")
	k2.RetiredAt = at(50 * time.Hour)
	err = s.UpdateSigningKey(ctx, "nope", func(k store.SigningKey) (store.SigningKey, error) { return k, nil })
	wantErr(t, err, store.ErrNotFound, "UpdateSigningKey(unknown)")

	must(t, s.DeleteSigningKey(ctx, "k1"), "DeleteSigningKey")
	wantErr(t, s.DeleteSigningKey(ctx, "k1"), store.ErrNotFound, "DeleteSigningKey again")
	keys, err = s.ListSigningKeys(ctx)
	must(t, err, "ListSigningKeys after update and delete")
	equal(t, "keys after update and delete", keys, []store.SigningKey{k3, k2})
}

// ---------------------------------------------------------------------------
// Expiry sweep
// ---------------------------------------------------------------------------

func testDeleteExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := at(time.Hour)
	code := func(h string, exp time.Time) {
		c := authCode(h)
		c.ExpiresAt = exp
		must(t, s.CreateAuthCode(ctx, c), "CreateAuthCode "+h)
	}
	token := func(h string, exp time.Time) {
		rt := refreshToken(h, "f-"+h)
		rt.ExpiresAt = exp
		must(t, s.CreateRefreshToken(ctx, rt), "CreateRefreshToken "+h)
	}
	code("c-old", now.Add(-time.Minute))
	code("c-now", now) // ExpiresAt == now: expired
	code("c-live", now.Add(time.Millisecond))
	code("c-forever", time.Time{})
	token("t-old", now.Add(-time.Hour))
	token("t-live", now.Add(time.Hour))
	token("t-forever", time.Time{})
	k := signingKey("k", at(0))
	k.ExpiresAt = at(0) // signing keys are not swept
	must(t, s.CreateSigningKey(ctx, k), "CreateSigningKey")
	must(t, s.PutConsent(ctx, store.Consent{UserID: "u", ClientID: "c", CreatedAt: at(0), UpdatedAt: at(0)}), "PutConsent")

	n, err := s.DeleteExpired(ctx, now)
	must(t, err, "DeleteExpired")
	if n != 3 {
		t.Errorf("DeleteExpired = %d, want 3", n)
	}
	for _, h := range []string{"c-old", "c-now"} {
		_, err := s.ConsumeAuthCode(ctx, h, at(0))
		wantErr(t, err, store.ErrNotFound, "ConsumeAuthCode(swept "+h+")")
	}
	for _, h := range []string{"c-live", "c-forever"} {
		_, err := s.ConsumeAuthCode(ctx, h, at(0))
		must(t, err, "ConsumeAuthCode(kept "+h+")")
	}
	_, err = s.GetRefreshToken(ctx, "t-old")
	wantErr(t, err, store.ErrNotFound, "GetRefreshToken(swept)")
	for _, h := range []string{"t-live", "t-forever"} {
		_, err := s.GetRefreshToken(ctx, h)
		must(t, err, "GetRefreshToken(kept "+h+")")
	}
	keys, err := s.ListSigningKeys(ctx)
	must(t, err, "ListSigningKeys")
	if len(keys) != 1 {
		t.Errorf("DeleteExpired removed signing keys: %d left, want 1", len(keys))
	}
	_, err = s.GetConsent(ctx, "u", "c")
	must(t, err, "GetConsent after DeleteExpired")

	n, err = s.DeleteExpired(ctx, now)
	must(t, err, "DeleteExpired again")
	if n != 0 {
		t.Errorf("DeleteExpired again = %d, want 0", n)
	}
}

// ---------------------------------------------------------------------------
// Round-trip details
// ---------------------------------------------------------------------------

func testTimeRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Not UTC, sub-microsecond digits, a monotonic reading, far past/future.
	cet := time.FixedZone("CET", 3600)
	fine := time.Date(2031, 12, 31, 23, 59, 59, 987_654_321, cet)
	now := time.Now() // has a monotonic clock reading
	old := time.Date(1971, 2, 3, 4, 5, 6, 7_000_000, time.UTC)
	far := time.Date(2999, 1, 1, 0, 0, 0, 1_000_000, cet)

	near := func(what string, got, want time.Time) {
		t.Helper()
		if got.Location() != time.UTC {
			t.Errorf("%s: location %q, want UTC", what, got.Location())
		}
		if d := got.Sub(want); d <= -time.Millisecond || d >= time.Millisecond {
			t.Errorf("%s = %s, want %s to the millisecond", what, fmtTime(got), fmtTime(want))
		}
	}

	c := fullClient("c")
	c.SecretExpiresAt, c.CreatedAt, c.UpdatedAt = fine, now, far
	must(t, s.CreateClient(ctx, c), "CreateClient")
	gc, err := s.GetClient(ctx, "c")
	must(t, err, "GetClient")
	near("Client.SecretExpiresAt", gc.SecretExpiresAt, fine)
	near("Client.CreatedAt", gc.CreatedAt, now)
	near("Client.UpdatedAt", gc.UpdatedAt, far)

	u := fullUser("u", "alice")
	u.CreatedAt, u.UpdatedAt = old, fine
	must(t, s.CreateUser(ctx, u), "CreateUser")
	gu, err := s.GetUser(ctx, "u")
	must(t, err, "GetUser")
	near("User.CreatedAt", gu.CreatedAt, old)
	near("User.UpdatedAt", gu.UpdatedAt, fine)

	ac := authCode("h")
	ac.CreatedAt, ac.ExpiresAt = fine, far
	must(t, s.CreateAuthCode(ctx, ac), "CreateAuthCode")
	gac, err := s.ConsumeAuthCode(ctx, "h", fine.Add(time.Second))
	must(t, err, "ConsumeAuthCode")
	near("AuthCode.CreatedAt", gac.CreatedAt, fine)
	near("AuthCode.ExpiresAt", gac.ExpiresAt, far)
	near("AuthCode.UsedAt", gac.UsedAt, fine.Add(time.Second))
	gac, err = s.ConsumeAuthCode(ctx, "h", far)
	wantErr(t, err, store.ErrAlreadyUsed, "ConsumeAuthCode again")
	near("stored AuthCode.UsedAt", gac.UsedAt, fine.Add(time.Second))

	rt := refreshToken("r", "f")
	rt.CreatedAt, rt.ExpiresAt = old, far
	must(t, s.CreateRefreshToken(ctx, rt), "CreateRefreshToken")
	_, err = s.RotateRefreshToken(ctx, "r", refreshToken("r2", "f"), fine)
	must(t, err, "RotateRefreshToken")
	must(t, s.RevokeRefreshFamily(ctx, "f", fine.Add(time.Second)), "RevokeRefreshFamily")
	grt, err := s.GetRefreshToken(ctx, "r")
	must(t, err, "GetRefreshToken")
	near("RefreshToken.CreatedAt", grt.CreatedAt, old)
	near("RefreshToken.ExpiresAt", grt.ExpiresAt, far)
	near("RefreshToken.RotatedAt", grt.RotatedAt, fine)
	near("RefreshToken.RevokedAt", grt.RevokedAt, fine.Add(time.Second))

	must(t, s.PutConsent(ctx, store.Consent{UserID: "u", ClientID: "c", CreatedAt: fine, UpdatedAt: now}), "PutConsent")
	gco, err := s.GetConsent(ctx, "u", "c")
	must(t, err, "GetConsent")
	near("Consent.CreatedAt", gco.CreatedAt, fine)
	near("Consent.UpdatedAt", gco.UpdatedAt, now)

	k := store.SigningKey{ID: "k", Algorithm: "ES256", Private: []byte("x"), CreatedAt: old, ActiveFrom: fine, RetiredAt: now, ExpiresAt: far}
	must(t, s.CreateSigningKey(ctx, k), "CreateSigningKey")
	keys, err := s.ListSigningKeys(ctx)
	must(t, err, "ListSigningKeys")
	if len(keys) != 1 {
		t.Fatalf("ListSigningKeys: %d keys, want 1", len(keys))
	}
	near("SigningKey.CreatedAt", keys[0].CreatedAt, old)
	near("SigningKey.ActiveFrom", keys[0].ActiveFrom, fine)
	near("SigningKey.RetiredAt", keys[0].RetiredAt, now)
	near("SigningKey.ExpiresAt", keys[0].ExpiresAt, far)

	// Zero times stay zero (not 1970, not year 1 in another zone).
	z := store.SigningKey{ID: "z", Algorithm: "ES256", CreatedAt: at(0)}
	must(t, s.CreateSigningKey(ctx, z), "CreateSigningKey with zero times")
	keys, err = s.ListSigningKeys(ctx)
	must(t, err, "ListSigningKeys")
	for _, k := range keys {
		if k.ID == "z" && (!k.ActiveFrom.IsZero() || !k.RetiredAt.IsZero() || !k.ExpiresAt.IsZero()) {
			t.Errorf("zero times came back as %s, %s, %s", fmtTime(k.ActiveFrom), fmtTime(k.RetiredAt), fmtTime(k.ExpiresAt))
		}
	}
}

func testEmptySlices(t *testing.T, s store.Store) {
	ctx := t.Context()
	nonNil := func(what string, l []string) {
		t.Helper()
		if l == nil || len(l) != 0 {
			t.Errorf("%s = %#v, want an empty non-nil slice", what, l)
		}
	}
	for _, empty := range [][]string{nil, {}} {
		id := fmt.Sprintf("c-%v", empty == nil)
		c := store.Client{ID: id, Kind: store.ClientStatic, RedirectURIs: empty, GrantTypes: empty, ResponseTypes: empty, CreatedAt: at(0), UpdatedAt: at(0)}
		must(t, s.CreateClient(ctx, c), "CreateClient")
		got, err := s.GetClient(ctx, id)
		must(t, err, "GetClient")
		nonNil("Client.RedirectURIs", got.RedirectURIs)
		nonNil("Client.GrantTypes", got.GrantTypes)
		nonNil("Client.ResponseTypes", got.ResponseTypes)
		if len(got.JWKS) != 0 || len(got.Metadata) != 0 {
			t.Errorf("JWKS %q, Metadata %q, want empty", got.JWKS, got.Metadata)
		}

		u := store.User{ID: "u-" + id, Username: "n-" + id, Groups: empty, Roles: empty, Permissions: empty, CreatedAt: at(0), UpdatedAt: at(0)}
		must(t, s.CreateUser(ctx, u), "CreateUser")
		gu, err := s.GetUser(ctx, u.ID)
		must(t, err, "GetUser")
		nonNil("User.Groups", gu.Groups)
		nonNil("User.Roles", gu.Roles)
		nonNil("User.Permissions", gu.Permissions)

		co := store.Consent{UserID: u.ID, ClientID: id, Scopes: empty, Resources: empty, CreatedAt: at(0), UpdatedAt: at(0)}
		must(t, s.PutConsent(ctx, co), "PutConsent")
		gco, err := s.GetConsent(ctx, u.ID, id)
		must(t, err, "GetConsent")
		nonNil("Consent.Scopes", gco.Scopes)
		nonNil("Consent.Resources", gco.Resources)
	}
	// Strings that look like JSON or SQL are data like any other.
	odd := []string{"", "null", "[]", `"quoted"`, "it's", "ünïcødé ✓", "a,b"}
	must(t, s.CreateUser(ctx, store.User{ID: "odd", Groups: odd, CreatedAt: at(0), UpdatedAt: at(0)}), "CreateUser(odd groups)")
	gu, err := s.GetUser(ctx, "odd")
	must(t, err, "GetUser(odd)")
	equal(t, "odd groups", gu.Groups, odd)
}
