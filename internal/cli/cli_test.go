package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "servers:\n  - name: a\n    upstream: {url: \"http://127.0.0.1:1/mcp\"}\n")
	bad := write("bad.yaml", "listen: 127.0.0.1:8080\nbogus: 1\nservers:\n  - name: A!\n    upstream: {url: \"ftp://x\"}\n")
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"valid", []string{"config", "check", good}, ExitOK, []string{"ok"}},
		{"every problem with its line", []string{"config", "check", bad}, ExitInvalidConfig, []string{"bad.yaml:2:", "bogus", "bad.yaml:4:", "bad.yaml:5:", "3 problem(s)"}},
		{"missing file", []string{"config", "check", filepath.Join(dir, "nope.yaml")}, ExitInvalidConfig, []string{"nope.yaml"}},
		{"no file", []string{"config", "check"}, ExitInvalidConfig, []string{"usage"}},
		{"unknown command", []string{"frobnicate"}, ExitInvalidConfig, []string{"unknown command"}},
		{"serve with bad config", []string{"serve", "--config", bad}, ExitInvalidConfig, []string{"bogus"}},
		{"version", []string{"version"}, ExitOK, []string{"mcpgate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(tc.args, &out, &errb)
			all := out.String() + errb.String()
			if code != tc.code {
				t.Errorf("exit %d, want %d; output:\n%s", code, tc.code, all)
			}
			for _, c := range tc.contains {
				if !strings.Contains(all, c) {
					t.Errorf("output lacks %q:\n%s", c, all)
				}
			}
		})
	}
}
