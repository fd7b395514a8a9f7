package registration

import (
	"strings"
	"testing"
)

func TestMatchRedirectURI(t *testing.T) {
	reg := []string{"https://app.example/cb", "http://127.0.0.1/callback", "http://[::1]:8080/cb?x=1", "http://localhost/cb", "myapp:/oauth"}
	tests := []struct {
		got  string
		want bool
	}{
		{"https://app.example/cb", true},
		{"https://app.example/%63b", false}, // percent-encoded variant (issue 8, finding 11)
		{"https://app.example/cb/", false},
		{"https://APP.example/cb", false},
		{"https://app.example/cb?x", false},
		{"https://app.example:443/cb", false},
		{"http://127.0.0.1/callback", true},
		{"http://127.0.0.1:53012/callback", true}, // RFC 8252 §7.3: any port
		{"http://127.0.0.1:53012/%63allback", false},
		{"http://127.0.0.1:53012/callback/", false},
		{"http://127.0.0.1:53012/callback?x", false},
		{"http://127.0.0.1:53012/callback#f", false},
		{"http://127.0.0.1:/callback", false},
		{"http://127.0.0.1:123456/callback", false},
		{"http://user@127.0.0.1:1/callback", false},
		{"http://127.0.0.2:1/callback", false},
		{"http://localhost:1/callback", false}, // host must match as registered
		{"http://[::1]/cb?x=1", true},
		{"http://[::1]:1/cb?x=1", true},
		{"http://[::1]:1/cb?x=2", false},
		{"http://localhost:9/cb", true},
		{"http://127.0.0.1:9/cb", false},
		{"https://127.0.0.1:9/callback", false},
		{"myapp:/oauth", true},
		{"myapp:/Oauth", false},
		{"", false}, // several registered: redirect_uri is required
	}
	for _, tc := range tests {
		got, ok := MatchRedirectURI(reg, tc.got)
		if ok != tc.want || ok && got != tc.got {
			t.Errorf("MatchRedirectURI(%q) = %q, %v; want %v", tc.got, got, ok, tc.want)
		}
	}
	if got, ok := MatchRedirectURI([]string{"https://app.example/cb"}, ""); !ok || got != "https://app.example/cb" {
		t.Errorf("sole registered URI: %q %v", got, ok)
	}
}

// FuzzMatchRedirectURI checks the property of redirect matching: a match
// means the URIs are equal strings, or both are http loopback URIs on the
// same host that differ only in the port (RFC 8252 §7.3); in particular a
// percent-encoded variant of a registered URI never matches.
func FuzzMatchRedirectURI(f *testing.F) {
	f.Add("https://app.example/cb", "https://app.example/%63b")
	f.Add("http://127.0.0.1/cb", "http://127.0.0.1:8080/cb")
	f.Add("http://[::1]:1/cb?a=b", "http://[::1]:2/cb?a=b")
	f.Add("http://localhost/cb", "http://localhost:1/%63b")
	f.Add("http://127.0.0.1:1/cb", "http://127.0.0.1:1@evil.example/cb")
	f.Add("myapp:/cb", "myapp:/cb#x")
	f.Fuzz(func(t *testing.T, registered, got string) {
		m, ok := MatchRedirectURI([]string{registered}, got)
		if !ok {
			return
		}
		if got == "" {
			if m != registered {
				t.Fatalf("empty redirect_uri matched %q, not the registered one", m)
			}
			return
		}
		if m != got {
			t.Fatalf("match returned %q for %q", m, got)
		}
		if got == registered {
			return
		}
		rh, rr, rok := splitLoopback(registered)
		gh, gr, gok := splitLoopback(got)
		if !rok || !gok || rh != gh || rr != gr {
			t.Fatalf("%q matched %q without being equal or a loopback port variant", got, registered)
		}
		if stripPort(registered) != stripPort(got) {
			t.Fatalf("%q and %q differ in more than the port", got, registered)
		}
	})
}

// stripPort removes the port of an http loopback URI (for the property).
func stripPort(u string) string {
	after := strings.TrimPrefix(u, "http://")
	end := strings.IndexAny(after, "/?")
	if end < 0 {
		end = len(after)
	}
	auth := after[:end]
	if i := strings.LastIndexByte(auth, ':'); i >= 0 && !strings.HasSuffix(auth, "]") {
		auth = auth[:i]
	}
	return auth + after[end:]
}
