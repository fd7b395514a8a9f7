package forwarded

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustProxies(t testing.TB, cidrs ...string) *Proxies {
	t.Helper()
	p, err := ParseProxies(cidrs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestClient is the X-Forwarded-For table: the client is the right-most
// untrusted entry, and only when the direct peer is trusted.
func TestClient(t *testing.T) {
	p := mustProxies(t, "10.0.0.0/8", "127.0.0.1", "fd00::/8")
	tests := []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"untrusted peer: header ignored", "203.0.113.5", []string{"1.2.3.4"}, "203.0.113.5"},
		{"untrusted peer: spoofed trusted address ignored", "203.0.113.5", []string{"10.1.1.1"}, "203.0.113.5"},
		{"trusted peer, no header", "127.0.0.1", nil, "127.0.0.1"},
		{"trusted peer, one client", "127.0.0.1", []string{"198.51.100.7"}, "198.51.100.7"},
		{"client-written left entries are ignored", "127.0.0.1", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7"},
		{"trusted hops are skipped", "127.0.0.1", []string{"198.51.100.7, 10.0.0.2, 10.0.0.3"}, "198.51.100.7"},
		{"several header lines in order", "127.0.0.1", []string{"6.6.6.6", "198.51.100.7, 10.0.0.2"}, "198.51.100.7"},
		{"every entry trusted: left-most", "127.0.0.1", []string{"10.0.0.9, 10.0.0.2"}, "10.0.0.9"},
		{"with port", "127.0.0.1", []string{"198.51.100.7:4711"}, "198.51.100.7"},
		{"IPv6 bracketed with port", "127.0.0.1", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"IPv6 bracketed", "127.0.0.1", []string{"[2001:db8::1]"}, "2001:db8::1"},
		{"IPv6 bare", "127.0.0.1", []string{"2001:db8::1"}, "2001:db8::1"},
		{"IPv4-mapped IPv6 peer", "::ffff:127.0.0.1", []string{"198.51.100.7"}, "198.51.100.7"},
		{"IPv4-mapped entry", "127.0.0.1", []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
		{"IPv6 trusted peer", "fd00::1", []string{"198.51.100.7"}, "198.51.100.7"},
		{"malformed right-most: the proxy", "127.0.0.1", []string{"198.51.100.7, unknown"}, "127.0.0.1"},
		{"malformed after a trusted hop: that hop", "127.0.0.1", []string{"garbage, 10.0.0.2"}, "10.0.0.2"},
		{"malformed left of the client: the client", "127.0.0.1", []string{"garbage, 198.51.100.7"}, "198.51.100.7"},
		{"empty entry", "127.0.0.1", []string{""}, "127.0.0.1"},
		{"zone is malformed", "127.0.0.1", []string{"fe80::1%eth0"}, "127.0.0.1"},
		{"spaces", "127.0.0.1", []string{"  198.51.100.7  ,  10.0.0.2 "}, "198.51.100.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Client(netip.MustParseAddr(tt.peer), tt.xff)
			if got.String() != tt.want {
				t.Errorf("Client(%s, %q) = %s, want %s", tt.peer, tt.xff, got, tt.want)
			}
		})
	}
}

func TestNoProxiesTrustsNobody(t *testing.T) {
	var p *Proxies
	if got := p.Client(netip.MustParseAddr("127.0.0.1"), []string{"1.2.3.4"}); got.String() != "127.0.0.1" {
		t.Errorf("nil Proxies believed the header: %s", got)
	}
}

func TestParseProxies(t *testing.T) {
	for _, bad := range []string{"", "10.0.0.0/33", "example.com", "10.0.0.1/8/1", "fe80::1%eth0"} {
		if _, err := ParseProxies([]string{bad}); err == nil {
			t.Errorf("ParseProxies(%q) accepted it", bad)
		}
	}
	p := mustProxies(t, "10.1.2.3/8")
	if !p.Trusts(netip.MustParseAddr("10.200.0.1")) {
		t.Error("10.1.2.3/8 is not masked to 10.0.0.0/8")
	}
}

// TestMiddleware: proto and host are taken from a trusted peer only, and
// the request's RemoteAddr and Host are rewritten once.
func TestMiddleware(t *testing.T) {
	p := mustProxies(t, "192.0.2.0/24")
	tests := []struct {
		name, remote               string
		hdr                        map[string]string
		wantAddr, wantProto, wantH string
	}{
		{"trusted", "192.0.2.1:5000", map[string]string{"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "mcp.example.com"},
			"198.51.100.7", "https", "mcp.example.com"},
		{"untrusted", "203.0.113.1:5000", map[string]string{"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
			"203.0.113.1", "http", "gw.local"},
		{"trusted, bad proto and host", "192.0.2.1:5000", map[string]string{"X-Forwarded-Proto": "gopher", "X-Forwarded-Host": "a b/c"},
			"192.0.2.1", "http", "gw.local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Info
			var remote, host string
			h := Middleware(p, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, _ = FromContext(r.Context())
				remote, host = ClientAddr(r), r.Host
			}))
			r := httptest.NewRequest("GET", "http://gw.local/", nil)
			r.RemoteAddr = tt.remote
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if remote != tt.wantAddr || got.Client.String() != tt.wantAddr || got.Proto != tt.wantProto || host != tt.wantH {
				t.Errorf("got addr %s (%s) proto %q host %q; want %s %q %q", remote, got.Client, got.Proto, host, tt.wantAddr, tt.wantProto, tt.wantH)
			}
		})
	}
}

// FuzzClient checks that the client address is always either the peer or
// an address written in X-Forwarded-For, that an untrusted peer is always
// its own client whatever the header says, and that nothing panics.
func FuzzClient(f *testing.F) {
	f.Add("127.0.0.1", "198.51.100.7, 10.0.0.2")
	f.Add("203.0.113.5", "10.0.0.1")
	f.Add("127.0.0.1", "[::1]:80,unknown,,2001:db8::1")
	f.Add("::ffff:10.0.0.1", "::ffff:1.2.3.4")
	p := mustProxies(f, "10.0.0.0/8", "127.0.0.1", "::1")
	f.Fuzz(func(t *testing.T, peer, xff string) {
		pa, err := netip.ParseAddr(peer)
		if err != nil {
			return
		}
		got := p.Client(pa, []string{xff})
		if !p.Trusts(pa) {
			if got != pa.Unmap() {
				t.Fatalf("untrusted peer %s: client %s", pa, got)
			}
			return
		}
		if got == pa.Unmap() {
			return
		}
		found := false
		for _, e := range strings.Split(xff, ",") {
			if a, ok := parseNode(strings.TrimSpace(e)); ok && a == got {
				found = true
			}
		}
		if !found {
			t.Fatalf("client %s appears neither as the peer nor in %q", got, xff)
		}
	})
}
