package connector

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadAgentConfig(t *testing.T) {
	t.Setenv("MCPGATE_TEST_KEY", "/etc/k.pem")
	tests := []struct {
		name, yaml, want string // want: "" = valid, else a substring of the error
	}{
		{"valid", "gateway: https://gw.example\nname: edge\nclient_id: c\nprivate_key_file: ${MCPGATE_TEST_KEY}\nupstreams: [{name: m, url: 'http://10.0.0.5:9000/mcp'}, {name: w, command: [srv, 'a$b']}]\n", ""},
		{"unset variable", "gateway: https://gw.example\nname: edge\nclient_id: c\nprivate_key_file: ${MCPGATE_TEST_UNSET}\nupstreams: [{name: m, url: 'http://a:1/'}]\n", "MCPGATE_TEST_UNSET"},
		{"unknown key", "gateway: https://gw.example\nname: edge\nclient_id: c\nprivate_key_file: k\nsecret: x\nupstreams: [{name: m, url: 'http://a:1/'}]\n", "secret"},
		{"plain http to a remote gateway", "gateway: http://gw.example\nname: edge\nclient_id: c\nprivate_key_file: k\nupstreams: [{name: m, url: 'http://a:1/'}]\n", "plain http"},
		{"no upstreams", "gateway: https://gw.example\nname: edge\nclient_id: c\nprivate_key_file: k\n", "at least one"},
		{"url and command", "gateway: https://gw.example\nname: edge\nclient_id: c\nprivate_key_file: k\nupstreams: [{name: m, url: 'http://a:1/', command: [x]}]\n", "exclusive"},
		{"env on a url", "gateway: https://gw.example\nname: edge\nclient_id: c\nprivate_key_file: k\nupstreams: [{name: m, url: 'http://a:1/', env: {A: b}}]\n", "only for command"},
		{"duplicate names", "gateway: https://gw.example\nname: edge\nclient_id: c\nprivate_key_file: k\nupstreams: [{name: m, url: 'http://a:1/'}, {name: m, url: 'http://b:1/'}]\n", "unique"},
		{"bad instance", "gateway: https://gw.example\nname: edge\ninstance: 'a b'\nclient_id: c\nprivate_key_file: k\nupstreams: [{name: m, url: 'http://a:1/'}]\n", "instance"},
		{"no key", "gateway: https://gw.example\nname: edge\nclient_id: c\nupstreams: [{name: m, url: 'http://a:1/'}]\n", "private_key_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "connector.yaml")
			if err := os.WriteFile(p, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadAgentConfig(p)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.PrivateKeyFile != "/etc/k.pem" || c.Upstreams[1].Command[1] != "a$b" || c.Instance == "" {
					t.Fatalf("config %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestKeyFilePermissions: like ssh, a private key others can read or
// write is refused with a message that says how to fix it.
func TestKeyFilePermissions(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	body := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	for _, tt := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o640, false}, {0o604, false}, {0o620, false}, {0o644, false}} {
		p := filepath.Join(t.TempDir(), "key.pem")
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, tt.mode); err != nil {
			t.Fatal(err)
		}
		_, err := loadKey(p)
		if tt.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: err = %v, want ok=%v", tt.mode, err, tt.ok)
		}
	}
}
