package tokens

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// FuzzVerify feeds arbitrary strings to Verify, seeded with a valid token,
// tokens with another alg, typ, issuer or audience, and broken encodings.
// Property: Verify never panics, and whatever it accepts has alg ES256,
// typ at+jwt, our iss, the audience asked for, and a sub and client_id —
// read back from the token's own bytes, not from Verify's result.
func FuzzVerify(f *testing.F) {
	e := newEnv(f)
	k := e.signingKey(f)
	good := e.mint(f, baseClaims())
	f.Add(good)
	f.Add(good + "x")
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add(signRaw(f, k, jose.ES256, "JWT", map[string]any{"iss": testIssuer, "aud": testResource, "sub": "u", "client_id": "c",
		"exp": e.now.Add(time.Minute).Unix(), "iat": e.now.Unix()}))
	f.Add(signRaw(f, k, jose.ES256, "at+jwt", map[string]any{"iss": "https://evil.example", "aud": testResource, "sub": "u", "client_id": "c",
		"exp": e.now.Add(time.Minute).Unix(), "iat": e.now.Unix()}))
	f.Add(signRaw(f, k, jose.ES256, "at+jwt", map[string]any{"iss": testIssuer, "aud": []string{"https://other.example", testResource}, "sub": "u",
		"client_id": "c", "exp": e.now.Add(time.Minute).Unix(), "iat": e.now.Unix()}))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := e.verifier.Verify(token, testResource)
		if err != nil {
			if c != nil {
				t.Fatal("claims returned with an error")
			}
			return
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted a token of %d parts", len(parts))
		}
		var hdr struct {
			Alg string `json:"alg"`
			Typ string `json:"typ"`
		}
		var body struct {
			Iss      string          `json:"iss"`
			Aud      json.RawMessage `json:"aud"`
			Sub      string          `json:"sub"`
			ClientID string          `json:"client_id"`
		}
		if decode(parts[0], &hdr) != nil || decode(parts[1], &body) != nil {
			t.Fatal("accepted a token whose parts do not decode")
		}
		if hdr.Alg != "ES256" || !isAccessTokenType(hdr.Typ) {
			t.Fatalf("accepted alg %q typ %q", hdr.Alg, hdr.Typ)
		}
		var one string
		var many []string
		audOK := json.Unmarshal(body.Aud, &one) == nil && one == testResource ||
			json.Unmarshal(body.Aud, &many) == nil && containsString(many, testResource)
		if body.Iss != testIssuer || !audOK || body.Sub == "" || body.ClientID == "" {
			t.Fatalf("accepted iss %q aud %s sub %q client_id %q", body.Iss, body.Aud, body.Sub, body.ClientID)
		}
		if c.Subject != body.Sub || c.ClientID != body.ClientID || c.Audience != testResource {
			t.Fatalf("claims %+v differ from the token", c)
		}
	})
}

func decode(part string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func containsString(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}
