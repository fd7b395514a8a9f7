package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"github.com/mcpgate/mcpgate/examples/callslog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/fixture"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func connect(t *testing.T, opts *Options) *mcp.ClientSession {
	t.Helper()
	ctx := context.Background()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := New(opts).Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "platform-test", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Wait()
	})
	return cs
}

// call calls a tool and returns its text and whether it is a tool error.
func call(t *testing.T, cs *mcp.ClientSession, name string, args any) (string, bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("CallTool(%s): %v", name, err)
	}
	if len(res.Content) != 1 {
		t.Fatalf("%s: got %d content blocks, want 1", name, len(res.Content))
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("%s: content is %T, want text", name, res.Content[0])
	}
	return tc.Text, res.IsError
}

func TestListEnvironments(t *testing.T) {
	cs := connect(t, nil)
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	if want := []string{"create_organization", "list_environments"}; !slices.Equal(names, want) {
		t.Errorf("tools = %v, want %v", names, want)
	}

	for _, args := range []any{nil, map[string]any{}} {
		text, isErr := call(t, cs, "list_environments", args)
		if isErr {
			t.Fatalf("tool error %q", text)
		}
		var got EnvironmentList
		if err := json.Unmarshal([]byte(text), &got); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Environments, Environments) {
			t.Errorf("got %+v, want %+v", got.Environments, Environments)
		}
	}
	if text, isErr := call(t, cs, "list_environments", map[string]any{"filter": "x"}); !isErr {
		t.Errorf("an unknown argument was accepted: %q", text)
	}
}

func TestCreateOrganization(t *testing.T) {
	cs := connect(t, nil)
	for _, tc := range []struct {
		name    string
		args    map[string]any
		want    string // the created organization's name
		wantErr string
	}{
		{name: "ok", args: map[string]any{"name": "Acme Inc"}, want: "Acme Inc"},
		{name: "trimmed", args: map[string]any{"name": "  Globex  "}, want: "Globex"},
		{name: "unicode", args: map[string]any{"name": "Zürich AG"}, want: "Zürich AG"},
		{name: "duplicate, any case", args: map[string]any{"name": "ACME inc"}, wantErr: `an organization named "Acme Inc" already exists`},
		{name: "empty", args: map[string]any{"name": ""}, wantErr: "name must not be empty"},
		{name: "missing", args: map[string]any{}, wantErr: "name"},
		{name: "too long", args: map[string]any{"name": strings.Repeat("a", MaxNameLen+1)}, wantErr: "longer than"},
		{name: "control character", args: map[string]any{"name": "a\nb"}, wantErr: "control characters"},
		{name: "wrong type", args: map[string]any{"name": []string{"a"}}, wantErr: "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, isErr := call(t, cs, "create_organization", tc.args)
			if tc.wantErr != "" {
				if !isErr || !strings.Contains(text, tc.wantErr) {
					t.Fatalf("got (isError=%v) %q, want a tool error containing %q", isErr, text, tc.wantErr)
				}
				return
			}
			if isErr {
				t.Fatalf("tool error %q", text)
			}
			var org Organization
			if err := json.Unmarshal([]byte(text), &org); err != nil {
				t.Fatal(err)
			}
			if org.Name != tc.want || !strings.HasPrefix(org.ID, "org_") || org.CreatedBy != UnknownCaller {
				t.Errorf("got %+v, want name %q", org, tc.want)
			}
			if _, err := time.Parse(time.RFC3339, org.CreatedAt); err != nil {
				t.Errorf("created_at: %v", err)
			}
		})
	}
}

func TestCallsLog(t *testing.T) {
	var buf bytes.Buffer
	cs := connect(t, &Options{CallsLog: callslog.New(&buf)})
	call(t, cs, "list_environments", nil)
	call(t, cs, "create_organization", map[string]any{"name": "Initech"})
	call(t, cs, "create_organization", map[string]any{"name": ""})

	var got []string
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var c callslog.Call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, c.Tool+" "+string(c.Arguments))
	}
	want := []string{`list_environments {}`, `create_organization {"name":"Initech"}`, `create_organization {"name":""}`}
	if !slices.Equal(got, want) {
		t.Errorf("calls log %q, want %q", got, want)
	}
}

func TestCallerHeader(t *testing.T) {
	srv := New(nil)
	ts := httptest.NewServer(fixture.NewStreamableHandler(srv, nil))
	defer ts.Close()
	for i, tc := range []struct{ header, want string }{
		{"env-bot", "env-bot"},
		{"", UnknownCaller},
	} {
		hc := &http.Client{Transport: headerTransport{CallerHeader, tc.header}}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "platform-test", Version: "1"}, nil).
			Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: ts.URL, HTTPClient: hc}, nil)
		if err != nil {
			t.Fatal(err)
		}
		text, isErr := call(t, cs, "create_organization", map[string]any{"name": "org " + string(rune('a'+i))})
		var org Organization
		if isErr || json.Unmarshal([]byte(text), &org) != nil || org.CreatedBy != tc.want {
			t.Errorf("%s %q: got %q, want created_by %q", CallerHeader, tc.header, text, tc.want)
		}
		cs.Close()
	}
	for ss := range srv.Sessions() {
		ss.Close()
	}
}

type headerTransport struct{ name, value string }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if h.value != "" {
		r = r.Clone(r.Context())
		r.Header.Set(h.name, h.value)
	}
	return http.DefaultTransport.RoundTrip(r)
}
