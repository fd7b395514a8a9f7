package vault_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/vault"
)

func writeFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vault.key")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xa7, 0x3c, 0x10, 0xff}, 8)
	hexKey := hex.EncodeToString(raw)
	want, err := vault.ParseKey(hexKey)
	if err != nil {
		t.Fatalf("ParseKey: %v", err)
	}
	if len(want.ID) != 16 || strings.Contains(hexKey, want.ID) {
		t.Fatalf("key ID %q: want 16 hex digits that are not part of the key", want.ID)
	}
	const env = "MCPGATE_TEST_VAULT_KEY"
	for _, tc := range []struct {
		name    string
		file    string // content, written with mode
		mode    os.FileMode
		envVal  *string
		noFile  bool
		wantErr string // "" = success
	}{
		{name: "hex file", file: hexKey + "\n", mode: 0o600},
		{name: "upper-case hex, read-only", file: strings.ToUpper(hexKey), mode: 0o400},
		{name: "base64 file", file: base64.StdEncoding.EncodeToString(raw), mode: 0o600},
		{name: "raw url base64 file", file: "  " + base64.RawURLEncoding.EncodeToString(raw) + "\r\n", mode: 0o600},
		{name: "world-readable", file: hexKey, mode: 0o644, wantErr: "group and others"},
		{name: "group-readable", file: hexKey, mode: 0o640, wantErr: "chmod 600"},
		{name: "world-writable", file: hexKey, mode: 0o602, wantErr: "group and others"},
		{name: "short key", file: hexKey[:62], mode: 0o600, wantErr: "must be 32 bytes"},
		{name: "short base64 key", file: base64.StdEncoding.EncodeToString(raw[:16]), mode: 0o600, wantErr: "must be 32 bytes"},
		{name: "long key", file: hexKey + "00", mode: 0o600, wantErr: "must be 32 bytes"},
		{name: "garbage", file: "this is not a key at all!", mode: 0o600, wantErr: "neither hex nor base64"},
		{name: "empty file", file: "\n", mode: 0o600, wantErr: "empty key"},
		{name: "missing file", noFile: true, wantErr: "no such file"},
		{name: "env hex", envVal: &hexKey},
		{name: "env base64", envVal: ptr(base64.URLEncoding.EncodeToString(raw))},
		{name: "env short", envVal: ptr(hexKey[:32]), wantErr: "must be 32 bytes"},
		{name: "env unset", envVal: nil, wantErr: "is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && tc.mode&0o077 != 0 {
				t.Skip("no mode bits on Windows")
			}
			var k vault.Key
			var err error
			switch {
			case tc.file != "" || tc.noFile:
				p := filepath.Join(t.TempDir(), "missing.key")
				if !tc.noFile {
					p = writeFile(t, tc.file, tc.mode)
				}
				t.Setenv(env, "ignored when a file is given")
				k, err = vault.LoadKey(p, env)
			default:
				if tc.envVal != nil {
					t.Setenv(env, *tc.envVal)
				} else {
					t.Setenv(env, "")
					os.Unsetenv(env)
				}
				k, err = vault.LoadKey("", env)
			}
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("LoadKey: no error, want %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("LoadKey error %q, want it to say %q", err, tc.wantErr)
				}
				for _, secret := range []string{hexKey, hexKey[:32], tc.file} {
					if len(strings.TrimSpace(secret)) >= 8 && strings.Contains(err.Error(), strings.TrimSpace(secret)) {
						t.Errorf("LoadKey error %q shows the key", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadKey: %v", err)
			}
			if k.ID != want.ID {
				t.Errorf("key ID %q, want %q (the same key)", k.ID, want.ID)
			}
		})
	}
	if _, err := vault.LoadKey("", ""); err == nil {
		t.Error("LoadKey with neither a file nor a variable: no error")
	}
	if _, err := vault.LoadKey(t.TempDir(), ""); err == nil {
		t.Error("LoadKey of a directory: no error")
	}
}

func ptr(s string) *string { return &s }

func TestGenerateKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "vault.key")
	k, err := vault.GenerateKeyFile(p)
	if err != nil {
		t.Fatalf("GenerateKeyFile: %v", err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	loaded, err := vault.LoadKey(p, "")
	if err != nil {
		t.Fatalf("LoadKey of the generated file: %v", err)
	}
	if loaded.ID != k.ID {
		t.Errorf("loaded key ID %q, want %q", loaded.ID, k.ID)
	}
	// It never overwrites a key.
	before, _ := os.ReadFile(p)
	if _, err := vault.GenerateKeyFile(p); !errors.Is(err, fs.ErrExist) {
		t.Errorf("GenerateKeyFile over an existing file: %v, want ErrExist", err)
	}
	if after, _ := os.ReadFile(p); !bytes.Equal(before, after) {
		t.Error("GenerateKeyFile changed an existing key file")
	}
	k2, err := vault.GenerateKeyFile(filepath.Join(t.TempDir(), "other.key"))
	if err != nil || k2.ID == k.ID {
		t.Errorf("a second key: ID %q, %v; want a different key", k2.ID, err)
	}
}

// Neither fmt nor slog shows a key, or a vault's keys.
func TestKeyNotPrinted(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vault.key")
	k, err := vault.GenerateKeyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(p)
	secretHex := strings.TrimSpace(string(text))
	raw, _ := hex.DecodeString(secretHex)
	v, err := vault.New(k)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		fmt.Fprintf(&out, verb+"\n", k)
		fmt.Fprintf(&out, verb+"\n", &k)
		fmt.Fprintf(&out, verb+"\n", []vault.Key{k})
		fmt.Fprintf(&out, verb+"\n", v)
	}
	slog.New(slog.NewJSONHandler(&out, nil)).Info("key", "key", k, "vault", v)
	slog.New(slog.NewTextHandler(&out, nil)).Info("key", "key", k, "vault", v)
	s := out.String()
	if !strings.Contains(s, k.ID) {
		t.Errorf("formatted output does not name the key ID %s:\n%s", k.ID, s)
	}
	for _, leak := range []string{secretHex, strings.ToUpper(secretHex), base64.StdEncoding.EncodeToString(raw), string(raw)} {
		if strings.Contains(s, leak) {
			t.Fatalf("formatted output shows the key:\n%s", s)
		}
	}
	// Nor as decimal bytes (%d / %v of a byte slice).
	if strings.Contains(s, strings.Trim(fmt.Sprint(raw[:4]), "[]")) {
		t.Fatalf("formatted output shows key bytes:\n%s", s)
	}
}
