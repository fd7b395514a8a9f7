// Command oauthclient is the harness the official MCP conformance suite's
// client authorization scenarios run (`conformance client --scenario
// auth/... --command "oauthclient"`). It drives mcpgate's real upstream
// connection code against the scenario's MCP server: the connections
// manager with an mcp-oauth provider (internal/connections,
// internal/mcpoauth), its /connections pages (the connect form, the
// continue page, the callback with its state bound to the user and the
// browser), the vault and a SQLite store. The harness plays the
// signed-in user's browser (the suite's authorization server approves
// without asking) and the gateway's part: it asks the manager for the
// user's token, calls the MCP server with it, and hands 401/403 answers
// to Manager.Refused, connecting again when that says to.
//
// The suite passes the server URL as the last argument and the scenario,
// protocol revision and context (pre-registered credentials) in
// MCP_CONFORMANCE_* variables. Exit status 0 means the tool call
// succeeded; anything else is a refusal (expected in the scenarios where
// the client must stop).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/connections"
	"github.com/mcpgate/mcpgate/internal/mcpoauth"
	"github.com/mcpgate/mcpgate/internal/store"
	"github.com/mcpgate/mcpgate/internal/store/sqlite"
	"github.com/mcpgate/mcpgate/internal/vault"
	"github.com/mcpgate/mcpgate/internal/web"
)

// The scenario's expected client ID metadata document URL (it need not
// resolve: the suite's authorization server takes it as it is).
const cimdURL = "https://conformance-test.local/client-metadata.json"

// gatewayHost is the harness gateway's public host: requests to it are
// served in-process by the connections pages.
const gatewayHost = "mcpgate.test"

const connName = "upstream"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: oauthclient SERVER_URL")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := run(ctx, os.Args[len(os.Args)-1]); err != nil {
		fmt.Fprintln(os.Stderr, "oauthclient:", err)
		os.Exit(1)
	}
}

type harness struct {
	mgr     *connections.Manager
	browser *http.Client
	server  string
	version string
	session string
	nextID  int
	log     *slog.Logger
}

func run(ctx context.Context, serverURL string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir, err := os.MkdirTemp("", "oauthclient")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		return err
	}
	defer st.Close()
	key, err := vault.GenerateKey()
	if err != nil {
		return err
	}
	v, err := vault.New(key)
	if err != nil {
		return err
	}
	var pre *mcpoauth.PreRegistered
	var sc struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if raw := os.Getenv("MCP_CONFORMANCE_CONTEXT"); raw != "" && json.Unmarshal([]byte(raw), &sc) == nil && sc.ClientID != "" {
		pre = &mcpoauth.PreRegistered{ClientID: sc.ClientID, ClientSecret: sc.ClientSecret}
	}
	mgr := connections.New([]connections.Provider{{Name: connName, Description: "the scenario's MCP server",
		MCP: &connections.MCPUpstream{URL: serverURL, Pre: pre}}}, st, v, "https://"+gatewayHost, log)
	// The suite's servers listen on loopback over plain http: allowed
	// here explicitly, as an operator would for a development setup.
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	mgr.EnableMCP(connections.MCPOptions{Guard: mcpoauth.NewHTTPClient(mcpoauth.GuardOptions{Allow: loopback, AllowHTTP: true}),
		AllowHTTP: true, MetadataURL: cimdURL, ClientName: "mcpgate conformance harness"})
	user := store.User{ID: "alice", Email: "alice@example.com"}
	pages, err := connections.NewPages(mgr, func(*http.Request) (store.User, bool) { return user, true },
		web.NewCSRF([]byte("harness csrf key"), false), []byte("harness state secret"))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	pages.Mount(mux)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &inProcess{host: gatewayHost, h: mux, next: http.DefaultTransport}}
	version := os.Getenv("MCP_CONFORMANCE_PROTOCOL_VERSION")
	if version == "" {
		version = "2025-11-25"
	}
	h := &harness{mgr: mgr, browser: browser, server: serverURL, version: version, log: log}
	return h.session1(ctx)
}

// session1 plays one client session through the gateway's upstream side.
func (h *harness) session1(ctx context.Context) error {
	if h.stateful() {
		if _, err := h.call(ctx, "initialize", map[string]any{"protocolVersion": h.version, "capabilities": map[string]any{},
			"clientInfo": map[string]any{"name": "mcpgate-oauthclient", "version": "1.0.0"}}); err != nil {
			return err
		}
		if err := h.notify(ctx, "notifications/initialized"); err != nil {
			return err
		}
	}
	list, err := h.call(ctx, "tools/list", map[string]any{})
	if err != nil {
		return err
	}
	var tools struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(list, &tools); err != nil || len(tools.Tools) == 0 {
		return fmt.Errorf("tools/list: no tools in %s", list)
	}
	res, err := h.call(ctx, "tools/call", map[string]any{"name": tools.Tools[0].Name, "arguments": map[string]any{}})
	if err != nil {
		return err
	}
	h.log.Info("tool called", "result", string(res))
	return nil
}

func (h *harness) stateful() bool { return h.version <= "2025-11-25" }

// maxRounds bounds the connect-and-retry rounds of one call: the
// manager's own step-up bound should end things well before.
const maxRounds = 5

// call makes one request as the gateway would: with the user's token
// from the manager; on "not connected" the user connects (the gateway
// would answer with the connect URL); a 401/403 goes to Refused, whose
// answer says whether connecting again can help.
func (h *harness) call(ctx context.Context, method string, params map[string]any) (json.RawMessage, error) {
	for range maxRounds {
		tok, err := h.mgr.Token(ctx, "alice", "", connName)
		var nc *connections.ErrNotConnected
		if errors.As(err, &nc) {
			h.log.Info("not connected: connecting", "method", method, "message", nc.Error())
			if err := h.connect(ctx); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		resp, err := h.send(ctx, method, params, tok)
		if err != nil {
			return nil, err
		}
		if resp.status == http.StatusUnauthorized || resp.status == http.StatusForbidden {
			err := h.mgr.Refused(ctx, "alice", "", connName, resp.status, resp.header)
			var retry *connections.ErrRetry
			switch {
			case errors.As(err, &nc):
				h.log.Info("upstream refused: connecting", "status", resp.status, "message", nc.Error())
				if err := h.connect(ctx); err != nil {
					return nil, err
				}
				continue
			case errors.As(err, &retry):
				continue
			case err != nil:
				return nil, fmt.Errorf("%s: %w", method, err)
			}
			return nil, fmt.Errorf("%s: upstream answered HTTP %d", method, resp.status)
		}
		if resp.status != http.StatusOK {
			return nil, fmt.Errorf("%s: upstream answered HTTP %d: %s", method, resp.status, resp.body)
		}
		return resp.result(method)
	}
	return nil, fmt.Errorf("%s: still refused after %d rounds", method, maxRounds)
}

// connect plays the user on /connections: the form, the continue page,
// the authorization server (which approves at once), the callback.
func (h *harness) connect(ctx context.Context) error {
	base := "https://" + gatewayHost
	page, err := h.get(ctx, base+"/connections")
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`action="/connections/` + connName + `/connect"><input type="hidden" name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		return errors.New("connections page: no connect form")
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/connections/"+connName+"/connect", strings.NewReader(url.Values{"csrf": {m[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := h.browser.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("connect: HTTP %d: %s", resp.StatusCode, body)
	}
	cm := regexp.MustCompile(`<a href="([^"]+)">Continue</a>`).FindSubmatch(body)
	if cm == nil {
		return errors.New("connect: no continue link")
	}
	authURL := htmlUnescape(string(cm[1]))
	h.log.Info("authorizing", "url", authURL)
	final, err := h.browser.Get(authURL) // follows the redirect to the callback and on to /connections
	if err != nil {
		return err
	}
	io.Copy(io.Discard, final.Body)
	final.Body.Close()
	msg := final.Request.URL.Query().Get("msg")
	if msg != "connected" {
		return fmt.Errorf("connect: ended at %s (%s)", final.Request.URL.Redacted(), msg)
	}
	return nil
}

func (h *harness) get(ctx context.Context, u string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := h.browser.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#39;", "'", "&quot;", `"`, "&lt;", "<", "&gt;", ">").Replace(s)
}

type answer struct {
	status int
	header http.Header
	body   []byte
	id     int
}

// send POSTs one JSON-RPC request in the revision's shape: a session
// (initialize, then MCP-Protocol-Version and Mcp-Session-Id) for
// 2025-11-25; per-request _meta and the Mcp-Method / Mcp-Name headers
// for the stateless 2026-07-28.
func (h *harness) send(ctx context.Context, method string, params map[string]any, token string) (*answer, error) {
	h.nextID++
	if !h.stateful() {
		params["_meta"] = map[string]any{
			"io.modelcontextprotocol/protocolVersion":    h.version,
			"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "mcpgate-oauthclient", "version": "1.0.0"},
			"io.modelcontextprotocol/clientCapabilities": map[string]any{},
		}
	}
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": h.nextID, "method": method, "params": params})
	resp, err := h.post(ctx, msg, method, params, token)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" && method == "initialize" {
		h.session = sid
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: body, id: h.nextID}, nil
}

func (h *harness) notify(ctx context.Context, method string) error {
	tok, err := h.mgr.Token(ctx, "alice", "", connName)
	if err != nil {
		return err
	}
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method})
	resp, err := h.post(ctx, msg, method, nil, tok)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (h *harness) post(ctx context.Context, msg []byte, method string, params map[string]any, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.server, bytes.NewReader(msg))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method != "initialize" || !h.stateful() {
		req.Header.Set("MCP-Protocol-Version", h.version)
	}
	if h.session != "" {
		req.Header.Set("Mcp-Session-Id", h.session)
	}
	if !h.stateful() {
		req.Header.Set("Mcp-Method", method)
		if name, ok := params["name"].(string); ok {
			req.Header.Set("Mcp-Name", name)
		}
	}
	return http.DefaultClient.Do(req)
}

// result extracts the JSON-RPC result of the answer, from a JSON body or
// the first matching event of an SSE body.
func (a *answer) result(method string) (json.RawMessage, error) {
	var candidates [][]byte
	if bytes.HasPrefix(bytes.TrimSpace(a.body), []byte("{")) {
		candidates = append(candidates, a.body)
	} else {
		sc := bufio.NewScanner(bytes.NewReader(a.body))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
				candidates = append(candidates, []byte(strings.TrimSpace(d)))
			}
		}
	}
	for _, c := range candidates {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(c, &m) != nil || string(m.ID) != fmt.Sprint(a.id) {
			continue
		}
		if m.Error != nil {
			return nil, fmt.Errorf("%s: error %d %s", method, m.Error.Code, m.Error.Message)
		}
		return m.Result, nil
	}
	return nil, fmt.Errorf("%s: no response in %q", method, a.body)
}

// inProcess serves requests for the gateway's host with the in-process
// handler (the browser reaching mcpgate), and everything else over the
// network (the browser reaching the authorization server).
type inProcess struct {
	host string
	h    http.Handler
	next http.RoundTripper
}

func (t *inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != t.host {
		return t.next.RoundTrip(r)
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}
