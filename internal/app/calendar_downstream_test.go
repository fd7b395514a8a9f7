package app

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/examples/calendar/api"
	calendar "github.com/mcpgate/mcpgate/examples/calendar/server"
	"github.com/mcpgate/mcpgate/examples/callslog"
	"github.com/mcpgate/mcpgate/internal/fixture"
	"github.com/mcpgate/mcpgate/internal/testidp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestCalendarDownstream is scenario S1 end to end with the example's own
// config (examples/calendar/mcpgate.yaml): the calendar MCP server keeps no
// events itself but writes them to a downstream calendar API, which accepts
// only tokens of its own OAuth provider (a second, real OpenID provider).
// Sam signs in to mcpgate, connects the calendar once from /connections, and
// create_event through mcpgate then creates the event in the API as Sam:
// the API's owner is Sam's account at the calendar's provider. Before he
// connects, the call is a tool error that says where to connect.
func TestCalendarDownstream(t *testing.T) {
	// Sam's calendar account has another address than his sign-in at
	// mcpgate (sam@tenant-a.example), so that an owner of
	// sam.calendar@calendar.example can only come from the provider's token.
	const calendarEmail = "sam.calendar@calendar.example"
	prov, provSrv, err := testidp.NewHTTPTest([]testidp.User{{Username: "sam", Password: "sam-calendar-pw", Email: calendarEmail}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(provSrv.Close)
	authz, tokenURL, userinfo := oidcEndpoints(t, prov.Issuer())

	// The downstream calendar API, checking each token at the provider
	// (no cache, so that a token the provider stops honouring is refused
	// at once).
	calAPI, err := api.New(api.Options{UserinfoURL: userinfo, CacheFor: -1})
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := httptest.NewServer(calAPI)
	t.Cleanup(apiSrv.Close)

	// The calendar MCP server in API mode, logging the calls it receives.
	calls := &syncBuf{}
	ms := calendar.New(nil, &calendar.Options{API: apiSrv.URL, CallsLog: callslog.New(calls)})
	mcpSrv := httptest.NewServer(fixture.NewStreamableHandler(ms, nil))
	t.Cleanup(func() {
		mcpSrv.Close()
		for ss := range ms.Sessions() {
			ss.Close()
		}
	})
	mcpURL, _ := url.Parse(mcpSrv.URL)

	// mcpgate from the example's config: built-in sam (Schedulers: may
	// write) and riley (may only read), the calendar-api connection, and
	// the calendar upstream in credentials mode connection.
	cfg, err := os.ReadFile("../../examples/calendar/mcpgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const secret = "calendar-provider-secret-0123"
	as := startAppEnv(t, string(cfg), map[string]string{
		"PORT": "0", "DATA_DIR": t.TempDir(), "CALENDAR_PORT": mcpURL.Port(),
		"CALENDAR_API_AUTHORIZE_URL": authz, "CALENDAR_API_TOKEN_URL": tokenURL,
		"CALENDAR_API_CLIENT_SECRET": secret, "CALENDAR_API_URL": apiSrv.URL,
	})
	if err := prov.AddClient(testidp.Client{ID: "mcpgate-calendar", Secret: secret, RedirectURIs: []string{as.base + "/connections/callback"}}); err != nil {
		t.Fatal(err)
	}
	resource := as.base + "/mcp/calendar"
	clientID := register(t, as.base)
	signIn := func(b *browser) map[string]any {
		t.Helper()
		verifier, challenge := pkce()
		loc := b.authorize(authURL(as.base, clientID, challenge, resource, "mcp:calendar.readonly mcp:calendar.write"))
		code, tok := postToken(t, as.base, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
			"code_verifier": {verifier}, "client_id": {clientID}, "redirect_uri": {redirectURI}}, "", "")
		if code != 200 {
			t.Fatalf("%s's token: %d %v", b.user, code, tok)
		}
		return tok
	}
	ctx := context.Background()
	event := map[string]any{"title": "Planning", "start": "2026-12-01T09:00:00Z", "end": "2026-12-01T10:00:00Z", "attendees": []string{"riley@tenant-a.example"}}
	callAs := func(access, tool string, args map[string]any) (string, bool) {
		t.Helper()
		res, err := connectBearer(t, resource, access).CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		return res.Content[0].(*mcp.TextContent).Text, res.IsError
	}

	// Riley may only read: her write is refused at the gateway, connected
	// or not, and never reaches the calendar server.
	riley := signIn(newBrowser(t, "riley", "riley"))
	if riley["scope"] != "mcp:calendar.readonly" {
		t.Errorf("riley's scope = %v", riley["scope"])
	}
	// No policy gives her the write scope, so step-up cannot help: the
	// call is answered in words, never a 403 that reopens the browser.
	refused, err := connectBearer(t, resource, riley["access_token"].(string)).CallTool(ctx, &mcp.CallToolParams{Name: "create_event", Arguments: event})
	if err != nil || !refused.IsError || !strings.Contains(refused.Content[0].(*mcp.TextContent).Text, "mcp:calendar.write") {
		t.Errorf("riley's create_event: %v %+v, want a tool error naming mcp:calendar.write", err, refused)
	}

	b := newBrowser(t, "sam", "sam") // the example's demo password
	sam := signIn(b)
	if sam["scope"] != "mcp:calendar.readonly mcp:calendar.write" {
		t.Fatalf("sam's scope = %v", sam["scope"])
	}
	access := sam["access_token"].(string)

	// Not connected yet: a tool error naming where to connect; the
	// calendar server never sees the call and the API holds nothing.
	if text, isErr := callAs(access, "create_event", event); !isErr || !strings.Contains(text, as.base+"/connections") || !strings.Contains(text, "calendar-api") {
		t.Fatalf("create_event before connecting = (isError=%v) %q, want a tool error pointing at %s/connections", isErr, text, as.base)
	}
	if strings.Contains(calls.String(), "create_event") {
		t.Errorf("the calendar server saw a call made before connecting: %s", calls.String())
	}
	if got := calAPI.Events(calendarEmail); len(got) != 0 {
		t.Errorf("the API holds %v before sam connected", got)
	}

	// Sam connects the calendar once: the connections page (same browser,
	// already signed in), Connect, the calendar provider's sign-in, back.
	connectFromPage(t, b, as.base, "calendar-api", prov, "sam", "sam-calendar-pw", authz)

	// Now create_event through mcpgate creates the event in the calendar
	// API as Sam's calendar account.
	text, isErr := callAs(access, "create_event", event)
	if isErr {
		t.Fatalf("create_event after connecting: %q", text)
	}
	var created calendar.Event
	if err := json.Unmarshal([]byte(text), &created); err != nil {
		t.Fatalf("create_event result %q: %v", text, err)
	}
	if created.Owner != calendarEmail || created.Title != "Planning" {
		t.Errorf("created %+v, want owner %s (sam at the calendar provider)", created, calendarEmail)
	}
	stored := calAPI.Events(calendarEmail)
	if len(stored) != 1 || stored[0].ID != created.ID || stored[0].Owner != calendarEmail || stored[0].Title != "Planning" ||
		len(stored[0].Attendees) != 1 || stored[0].Attendees[0] != "riley@tenant-a.example" {
		t.Errorf("the API's store for %s = %+v, want the event %s", calendarEmail, stored, created.ID)
	}
	if !strings.Contains(calls.String(), "create_event") {
		t.Error("the calendar server's calls log has no create_event")
	}
	// The API itself answers nobody without the provider's token.
	resp, err := http.Get(apiSrv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /events without a token: %d, want 401", resp.StatusCode)
	}

	// Reading goes through the API as Sam too.
	text, isErr = callAs(access, "list_events", map[string]any{})
	var list calendar.ListResult
	if isErr || json.Unmarshal([]byte(text), &list) != nil || len(list.Events) != 1 || list.Events[0].ID != created.ID {
		t.Errorf("list_events = (isError=%v) %q, want [%s]", isErr, text, created.ID)
	}

	// When the provider stops honouring Sam's token, the API answers 401
	// and the tool error says to connect again; nothing is written.
	prov.DisableUser("sam")
	text, isErr = callAs(access, "create_event", event)
	if !isErr || !strings.Contains(text, "refused your calendar credential (HTTP 401") || !strings.Contains(text, "/connections") {
		t.Errorf("create_event with a token the provider refuses = (isError=%v) %q", isErr, text)
	}
	if got := calAPI.Events(calendarEmail); len(got) != 1 {
		t.Errorf("the API holds %d events after a refused call, want 1", len(got))
	}
}
