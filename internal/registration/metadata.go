package registration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mcpgate/mcpgate/internal/oauth"
)

// Client metadata names (RFC 7591 §2) and values this package knows.
const (
	authNone              = "none"
	authClientSecretBasic = "client_secret_basic"
	authClientSecretPost  = "client_secret_post"
	authPrivateKeyJWT     = "private_key_jwt"

	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
	grantClientCredentials = "client_credentials"

	responseCode = "code"
)

const (
	maxRedirectURIs = 32
	maxNameLen      = 256
	maxListLen      = 32
)

// badMeta is a rejected metadata field: RFC 7591 §3.2.2
// invalid_client_metadata with a description fit to show the client.
func badMeta(format string, args ...any) *oauth.Error {
	return oauth.Errorf(oauth.InvalidClientMetadata, format, args...)
}

// badRedirect is RFC 7591 §3.2.2 invalid_redirect_uri.
func badRedirect(format string, args ...any) *oauth.Error {
	return oauth.Errorf(oauth.InvalidRedirectURI, format, args...)
}

// metadata is validated client metadata. fields holds every member as
// sent (minus nulls), with the normalised values written back, ready to be
// echoed (RFC 7591 §3.2.1).
type metadata struct {
	redirectURIs  []string
	name          string
	grantTypes    []string
	responseTypes []string
	authMethod    string
	scope         string
	jwks          json.RawMessage
	jwksURI       string
	fields        map[string]json.RawMessage
}

// metadataRules says what one caller accepts.
type metadataRules struct {
	// defaultAuthMethod applies when token_endpoint_auth_method is absent.
	defaultAuthMethod string
	// authMethods are the accepted token endpoint auth methods.
	authMethods []string
	// redirectURI vets one redirect URI; it returns why not, or nil.
	redirectURI func(string) error
}

// decodeObject parses a JSON object into its members. Members are kept
// raw and addressed by exact name: encoding/json's case-insensitive struct
// matching would let "Client_Secret" pass for "client_secret".
func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, errors.New("the body is not a JSON object")
	}
	if m == nil {
		return nil, errors.New("the body is not a JSON object")
	}
	if err := uniqueMembers(data); err != nil {
		return nil, err
	}
	for k, v := range m {
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			delete(m, k) // null = absent
		}
	}
	return m, nil
}

// parseMetadata validates client metadata (RFC 7591 §2) under rules.
func parseMetadata(fields map[string]json.RawMessage, rules metadataRules) (*metadata, *oauth.Error) {
	md := &metadata{fields: fields}
	var err *oauth.Error

	if md.grantTypes, err = stringList(fields, "grant_types"); err != nil {
		return nil, err
	}
	md.grantTypes = dedupe(md.grantTypes)
	if len(md.grantTypes) == 0 {
		// RFC 7591 §2: "If omitted, the default behavior is that the
		// client will use only the authorization_code Grant Type."
		md.grantTypes = []string{grantAuthorizationCode}
	}
	for _, g := range md.grantTypes {
		switch g {
		case grantAuthorizationCode, grantRefreshToken:
		case grantClientCredentials:
			// Issue 8, finding 2: tokens without a person are for clients
			// an operator registered. A client registering itself (or known
			// by its metadata document) is refused here, at registration,
			// rather than stripped of the grant, so it learns now and not at
			// its first token request (RFC 7591 §3.2.2).
			return nil, badMeta("grant type client_credentials is only for clients registered by the operator; self-registered and metadata-document clients use authorization_code (and refresh_token)")
		case "password":
			// OAuth 2.1 §10 (and RFC 9700 §2.4) removes the resource owner
			// password credentials grant.
			return nil, badMeta("grant type password is not supported")
		case "implicit":
			return nil, badMeta("the implicit grant is not supported (OAuth 2.1)")
		default:
			return nil, badMeta("grant type %q is not supported", g)
		}
	}
	hasCode := slices.Contains(md.grantTypes, grantAuthorizationCode)

	if md.responseTypes, err = stringList(fields, "response_types"); err != nil {
		return nil, err
	}
	md.responseTypes = dedupe(md.responseTypes)
	for _, rt := range md.responseTypes {
		if rt != responseCode {
			// "token" is the implicit grant, gone in OAuth 2.1; hybrid
			// types ("code id_token") are OpenID Connect, not offered.
			return nil, badMeta("response type %q is not supported; only \"code\"", rt)
		}
	}
	switch {
	case len(md.responseTypes) > 0:
	case hasCode:
		md.responseTypes = []string{responseCode} // RFC 7591 §2 default
	default:
		md.responseTypes = []string{}
	}
	// RFC 7591 §2.1: grant_types and response_types must agree.
	if hasCode != (len(md.responseTypes) > 0) {
		return nil, badMeta("grant type authorization_code and response type code go together (RFC 7591 §2.1)")
	}

	if md.redirectURIs, err = stringList(fields, "redirect_uris"); err != nil {
		return nil, err
	}
	if hasCode && len(md.redirectURIs) == 0 {
		// RFC 7591 §2: required for redirect-based flows; OAuth 2.1 §2.3.1
		// requires registration of every redirect URI.
		return nil, badRedirect("redirect_uris is required for the authorization_code grant")
	}
	if len(md.redirectURIs) > maxRedirectURIs {
		return nil, badRedirect("at most %d redirect_uris", maxRedirectURIs)
	}
	md.redirectURIs = dedupe(md.redirectURIs)
	for _, u := range md.redirectURIs {
		if e := rules.redirectURI(u); e != nil {
			return nil, badRedirect("redirect URI %q: %v", u, e)
		}
	}

	if md.name, err = stringField(fields, "client_name"); err != nil {
		return nil, err
	}
	if e := checkDisplayText(md.name); e != nil {
		return nil, badMeta("client_name: %v", e)
	}

	if md.authMethod, err = stringField(fields, "token_endpoint_auth_method"); err != nil {
		return nil, err
	}
	if md.authMethod == "" {
		md.authMethod = rules.defaultAuthMethod
	}
	if !slices.Contains(rules.authMethods, md.authMethod) {
		return nil, badMeta("token_endpoint_auth_method %q is not supported; use one of %s", md.authMethod, strings.Join(rules.authMethods, ", "))
	}

	if md.jwksURI, err = stringField(fields, "jwks_uri"); err != nil {
		return nil, err
	}
	if raw, ok := fields["jwks"]; ok {
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if json.Unmarshal(raw, &set) != nil || len(set.Keys) == 0 || !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
			return nil, badMeta("jwks must be a JWK Set: an object with a non-empty \"keys\" array (RFC 7517 §5)")
		}
		if e := publicKeysOnly(set.Keys); e != nil {
			return nil, e
		}
		md.jwks = compact(raw)
	}
	if md.jwksURI != "" {
		if e := checkHTTPSURL(md.jwksURI); e != nil {
			return nil, badMeta("jwks_uri: %v", e)
		}
	}
	if md.jwksURI != "" && md.jwks != nil {
		// RFC 7591 §2: "The jwks_uri and jwks parameters MUST NOT both be
		// present in the same request or response."
		return nil, badMeta("jwks and jwks_uri must not both be present")
	}
	if md.authMethod == authPrivateKeyJWT && md.jwksURI == "" && md.jwks == nil {
		return nil, badMeta("private_key_jwt needs the client's keys in jwks or jwks_uri")
	}
	if md.authMethod != authPrivateKeyJWT && (md.jwksURI != "" || md.jwks != nil) {
		// Keys are only ever used to verify private_key_jwt assertions;
		// keys for anything else (a machine grant) are refused with it.
		return nil, badMeta("jwks and jwks_uri are only accepted with token_endpoint_auth_method private_key_jwt")
	}

	if md.scope, err = stringField(fields, "scope"); err != nil {
		return nil, err
	}
	if md.scope != "" && !validScope(md.scope) {
		return nil, badMeta("scope must be space-separated scope tokens (RFC 6749 §3.3)")
	}

	// URLs a consent page may render as links or images: https only, so a
	// javascript: or data: value never reaches an href or src.
	for _, k := range []string{"client_uri", "logo_uri", "tos_uri", "policy_uri"} {
		v, err := stringField(fields, k)
		if err != nil {
			return nil, err
		}
		if v != "" {
			if e := checkHTTPSURL(v); e != nil {
				return nil, badMeta("%s: %v", k, e)
			}
		}
	}
	contacts, err := stringList(fields, "contacts")
	if err != nil {
		return nil, err
	}
	for _, c := range contacts {
		if e := checkDisplayText(c); e != nil {
			return nil, badMeta("contacts: %v", e)
		}
	}
	for _, k := range []string{"software_id", "software_version"} {
		v, err := stringField(fields, k)
		if err != nil {
			return nil, err
		}
		if e := checkDisplayText(v); e != nil {
			return nil, badMeta("%s: %v", k, e)
		}
	}

	// Write the normalised values back for the echo.
	setJSON(fields, "grant_types", md.grantTypes)
	setJSON(fields, "response_types", md.responseTypes)
	setJSON(fields, "token_endpoint_auth_method", md.authMethod)
	if len(md.redirectURIs) > 0 {
		setJSON(fields, "redirect_uris", md.redirectURIs)
	}
	return md, nil
}

func stringField(fields map[string]json.RawMessage, key string) (string, *oauth.Error) {
	raw, ok := fields[key]
	if !ok {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", badMeta("%s must be a string", key)
	}
	return s, nil
}

func stringList(fields map[string]json.RawMessage, key string) ([]string, *oauth.Error) {
	raw, ok := fields[key]
	if !ok {
		return nil, nil
	}
	var l []string
	if json.Unmarshal(raw, &l) != nil {
		return nil, badMeta("%s must be an array of strings", key)
	}
	if len(l) > maxListLen && key != "redirect_uris" {
		return nil, badMeta("%s has more than %d entries", key, maxListLen)
	}
	for _, s := range l {
		if s == "" {
			return nil, badMeta("%s must not contain empty strings", key)
		}
	}
	return l, nil
}

func setJSON(fields map[string]json.RawMessage, key string, v any) {
	b, _ := json.Marshal(v) // strings and string slices always marshal
	fields[key] = b
}

func dedupe(l []string) []string {
	if l == nil {
		return nil
	}
	out := make([]string, 0, len(l))
	for _, s := range l {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// checkDisplayText: text shown to people (consent page, admin UI) must be
// short, valid UTF-8 and free of control characters, including the
// bidirectional overrides used to disguise names.
func checkDisplayText(s string) error {
	if len(s) > maxNameLen {
		return fmt.Errorf("longer than %d bytes", maxNameLen)
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return errors.New("contains control characters")
		}
	}
	return nil
}

// checkHTTPSURL: an absolute https URL without userinfo or fragment.
func checkHTTPSURL(s string) error {
	if len(s) > maxURILen {
		return fmt.Errorf("longer than %d bytes", maxURILen)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a valid URL")
	case u.Scheme != "https" || u.Host == "" || u.Opaque != "":
		return errors.New("must be an https URL")
	case u.User != nil:
		return errUserinfo
	case strings.Contains(s, "#"):
		return errFragment
	}
	return nil
}

// validScope: scope = scope-token *( SP scope-token ),
// scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) (RFC 6749 §3.3).
func validScope(s string) bool {
	for tok := range strings.SplitSeq(s, " ") {
		if tok == "" {
			return false
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
				return false
			}
		}
	}
	return true
}

// privateMembers are the JWK members that carry secret key material
// (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// publicKeysOnly refuses a JWK Set holding private or symmetric key
// material: a client's keys here only verify its signatures, and a
// pasted private key must not end up stored (and echoed) by us.
func publicKeysOnly(keys []json.RawMessage) *oauth.Error {
	for _, raw := range keys {
		var k map[string]json.RawMessage
		if json.Unmarshal(raw, &k) != nil {
			return badMeta("jwks: every key must be a JSON object")
		}
		for _, m := range privateMembers {
			if _, ok := k[m]; ok {
				return badMeta("jwks must hold public keys only (a key has %q)", m)
			}
		}
	}
	return nil
}
