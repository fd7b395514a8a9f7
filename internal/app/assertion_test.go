package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestAssertionReplayAcrossReplicas: a private_key_jwt client assertion
// (RFC 7523) is single use on every replica and across a restart, not per
// process (audit finding 6: the replay cache lived in one process).
func TestAssertionReplayAcrossReplicas(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	r := &cutoffRig{t: t}
	capURL, _ := capturingUpstream(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	jwksLine := `    - {id: signer, token_endpoint_auth_method: private_key_jwt, grant_types: [client_credentials], jwks: '` + string(pub) + `'}`
	r.env = map[string]string{"LISTEN": addrA, "PUBLIC": "http://" + addrA, "HOSTS": addrA + `", "` + addrB, "CAP": capURL,
		"DB": t.TempDir() + "/mcpgate.db", "KEY": t.TempDir() + "/vault.key", "USERS": cutoffBob,
		"STORE": `{sqlite: "${DB}"}`, "CLIENTS": cutoffServer + "\n" + jwksLine, "HASH": "$2a$04$abcdefghijklmnopqrstuuJ5nnuNTC2nzlXbKXjF8j.MkkfUUN3aK"}
	a := r.start(nil)
	b := r.start(map[string]string{"LISTEN": addrB})
	b.base = "http://" + addrB
	issuer := "http://" + addrA
	assertion := func() string {
		now := time.Now()
		tok, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: "signer", Subject: "signer", Audience: jwt.Audience{issuer + "/oauth/token"},
			Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: strings.Repeat("j", 8) + now.Format("150405.000000000")}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	grant := func(as *testAS, assertion string) int {
		code, _ := postToken(t, as.base, url.Values{"grant_type": {"client_credentials"}, "resource": {issuer + "/mcp/demo"},
			"client_id": {"signer"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion": {assertion}}, "", "")
		return code
	}
	first := assertion()
	if got := grant(a, first); got != 200 {
		t.Fatalf("first use on A: %d", got)
	}
	if got := grant(b, first); got != 401 {
		t.Errorf("the same assertion on replica B: %d, want 401", got)
	}
	if got := grant(a, first); got != 401 {
		t.Errorf("the same assertion on A again: %d, want 401", got)
	}
	if got := grant(b, assertion()); got != 200 {
		t.Errorf("a fresh assertion on B: %d, want 200", got)
	}
	stop(t, a)
	a2 := r.start(nil)
	if got := grant(a2, first); got != 401 {
		t.Errorf("the same assertion after a restart: %d, want 401", got)
	}
}
