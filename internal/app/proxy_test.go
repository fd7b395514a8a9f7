package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// startNginx runs Debian's nginx on loopback as a reverse proxy to
// target (host:port), adding X-Forwarded-For/-Proto/-Host the usual way.
// It returns nginx's base URL; the test is skipped when nginx is absent.
func startNginx(t *testing.T, target string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/sbin/nginx"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Skip("nginx is not installed (apt-get install nginx-light; scripts/install-test-tools.sh does): skipping the reverse-proxy test")
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen %[2]s;
    location / {
      proxy_pass http://%[3]s;
      proxy_http_version 1.1;
      proxy_buffering off;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
    }
  }
}
`, dir, addr, target)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not start: %s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "http://" + addr
}

// forwardedFor is a client whose requests claim to come from addr (nginx
// appends the real peer, 127.0.0.1, which is the trusted proxy).
func forwardedFor(addr string) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: xffTransport(addr),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type xffTransport string

func (x xffTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", string(x))
	return http.DefaultTransport.RoundTrip(r)
}

// signIn opens the authorization URL and posts the sign-in form; it
// returns the answer's status and page (or redirect location).
func signIn(t *testing.T, c *http.Client, base, authURL, user, password string) (int, string) {
	t.Helper()
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `action="/oauth/login"`) {
		t.Fatalf("no sign-in form (%d): %s", resp.StatusCode, page)
	}
	fields := formFields(string(page))
	fields.Set("username", user)
	fields.Set("password", password)
	resp, err = c.PostForm(base+"/oauth/login", fields)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if loc := resp.Header.Get("Location"); loc != "" {
		return resp.StatusCode, loc
	}
	return resp.StatusCode, string(body)
}

// TestBehindNginx: behind a real reverse proxy listed in trusted_proxies,
// five bad passwords from one forwarded client address slow down that
// address only: alice still signs in from another, and the log names the
// forwarded addresses, not the proxy's (audit finding 12).
func TestBehindNginx(t *testing.T) {
	as := startApp(t, oauthConfig+"trusted_proxies: [127.0.0.1, \"::1\"]\n")
	proxy := startNginx(t, as.app.Addr())
	clientID := register(t, proxy)
	_, challenge := pkce()
	au := authURL(proxy, clientID, challenge, as.base+"/mcp/demo", "mcp:read")

	attacker := forwardedFor("203.0.113.66")
	for i := range 5 {
		if _, page := signIn(t, attacker, proxy, au, "alice", "wrong"); !strings.Contains(page, "Wrong username or password") {
			t.Fatalf("bad password %d: %s", i+1, page)
		}
	}
	if _, page := signIn(t, attacker, proxy, au, "alice", "alice-password"); !strings.Contains(page, "Too many failed attempts") {
		t.Errorf("the guessing address was not slowed down: %s", page)
	}
	status, page := signIn(t, forwardedFor("198.51.100.20"), proxy, au, "alice", "alice-password")
	if strings.Contains(page, "Too many failed attempts") || strings.Contains(page, "Wrong username") {
		t.Fatalf("alice is locked out from her own address (%d): %s", status, page)
	}
	if !strings.Contains(page, `action="/oauth/consent"`) && !strings.Contains(page, "code=") {
		t.Errorf("alice did not get past sign-in (%d): %s", status, page)
	}
	logs := as.logs.String()
	if !strings.Contains(logs, "msg=\"signed in\" user=alice addr=198.51.100.20") {
		t.Errorf("the successful sign-in line does not name the forwarded client address:\n%s", logs)
	}
	if !strings.Contains(logs, "addr=203.0.113.66") {
		t.Errorf("the log does not name the forwarded client address:\n%s", logs)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "sign-in") && strings.Contains(line, "addr=127.0.0.1") {
			t.Errorf("a sign-in line names the proxy, not the client: %s", line)
		}
	}

	// The audit line of a call through the proxy names the client too.
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(context.Background(),
		&mcp.StreamableClientTransport{Endpoint: proxy + "/mcp/open", DisableStandaloneSSE: true,
			HTTPClient: &http.Client{Transport: xffTransport("203.0.113.77")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	var audit string // written once the answer is out: wait for it
	for deadline := time.Now().Add(3 * time.Second); audit == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, line := range strings.Split(as.logs.String(), "\n") {
			if strings.Contains(line, "msg=audit") && strings.Contains(line, "name=whoami") {
				audit = line
			}
		}
	}
	if !strings.Contains(audit, "addr=203.0.113.77") {
		t.Errorf("audit line does not name the forwarded client: %q", audit)
	}
}

// fromAddr is a client whose connections come from the loopback address
// ip (any 127.x.y.z works on Linux).
func fromAddr(ip string) *http.Client {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Jar: jar, Transport: &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestGuessingDoesNotLockOutTheUser: five bad passwords for alice from one
// address do not stop alice signing in from another (the old lockout was
// per username for everyone: audit finding 12). No proxy involved.
func TestGuessingDoesNotLockOutTheUser(t *testing.T) {
	as := startApp(t, oauthConfig)
	clientID := register(t, as.base)
	_, challenge := pkce()
	au := authURL(as.base, clientID, challenge, as.base+"/mcp/demo", "mcp:read")
	attacker := fromAddr("127.0.0.66")
	for i := range 5 {
		if _, page := signIn(t, attacker, as.base, au, "alice", "wrong"); !strings.Contains(page, "Wrong username or password") {
			t.Fatalf("bad password %d: %s", i+1, page)
		}
	}
	status, page := signIn(t, fromAddr("127.0.0.20"), as.base, au, "alice", "alice-password")
	if strings.Contains(page, "Too many failed attempts") || strings.Contains(page, "Wrong username") {
		t.Fatalf("alice is locked out by someone else's guesses (%d): %s", status, page)
	}
}

// TestUntrustedForwardedForIgnored: without trusted_proxies a client's own
// X-Forwarded-For changes nothing (its guesses still count against its own
// address), and the log hints once at configuring trusted_proxies.
func TestUntrustedForwardedForIgnored(t *testing.T) {
	as := startApp(t, oauthConfig)
	clientID := register(t, as.base)
	_, challenge := pkce()
	au := authURL(as.base, clientID, challenge, as.base+"/mcp/demo", "mcp:read")
	for i := range 6 {
		// A fresh made-up address each time: were it believed, no address
		// would ever reach the limit.
		c := forwardedFor(fmt.Sprintf("198.51.100.%d", i+1))
		_, page := signIn(t, c, as.base, au, "alice", "wrong")
		if i == 5 && !strings.Contains(page, "Too many failed attempts") {
			t.Errorf("a spoofed X-Forwarded-For escaped the limit: %s", page)
		}
	}
	logs := as.logs.String()
	if strings.Contains(logs, "addr=198.51.100.") {
		t.Errorf("the log believed a spoofed X-Forwarded-For:\n%s", logs)
	}
	if n := strings.Count(logs, "trusted_proxies is not set"); n != 1 {
		t.Errorf("%d hints about trusted_proxies, want 1", n)
	}
}
