// Package server is the platform MCP server of mcpgate's machine-agents
// example (scenario S5): list_environments (read) and create_organization
// (write), called by agents that run with no user present and hold tokens
// from the client credentials grant. cmd/platform-server serves it over
// Streamable HTTP.
//
// Every tool call the server receives can be appended to a calls log (one
// JSON line per call), so that tests can prove the server did, or did not,
// see a call that the gateway should have refused.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/mcpgate/mcpgate/examples/callslog"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const (
	// Name and Version are reported in serverInfo.
	Name    = "platform"
	Version = "1.0.0"

	// CallerHeader names the HTTP request header whose value is recorded as
	// the creator of an organization. It is a stand-in until the gateway
	// hands the upstream a verified identity; without it (or over a
	// transport without headers) the creator is UnknownCaller.
	CallerHeader = "X-Mcp-User"
	// UnknownCaller is the creator when the call carries no CallerHeader.
	UnknownCaller = "unknown"

	// MaxNameLen bounds an organization's name.
	MaxNameLen = 100
	// MaxOrganizations bounds how many organizations the in-memory
	// directory holds.
	MaxOrganizations = 10000
	maxCallerLen     = 256
)

// Environment is one entry of list_environments.
type Environment struct {
	Name   string `json:"name"`
	Region string `json:"region"`
	URL    string `json:"url"`
	Status string `json:"status"`
}

// Environments is the fixed list list_environments returns.
var Environments = []Environment{
	{Name: "production", Region: "eu-west-1", URL: "https://app.platform.example", Status: "healthy"},
	{Name: "staging", Region: "eu-west-1", URL: "https://staging.platform.example", Status: "healthy"},
	{Name: "development", Region: "us-east-1", URL: "https://dev.platform.example", Status: "degraded"},
}

// EnvironmentList is the output of list_environments.
type EnvironmentList struct {
	Environments []Environment `json:"environments"`
}

// NoArgs is the input of list_environments: an object with no properties.
type NoArgs struct{}

// CreateOrgArgs is the input of create_organization.
type CreateOrgArgs struct {
	Name string `json:"name" jsonschema:"the organization's name, unique (case-insensitive)"`
}

// Organization is the output of create_organization.
type Organization struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedBy string `json:"created_by"`
	CreatedAt string `json:"created_at"` // RFC 3339, UTC
}

// Options configures New. The zero value (or nil) is valid.
type Options struct {
	// CallsLog, when set, receives one JSON line per tools/call.
	CallsLog *callslog.Log
	// Logger receives the SDK's server-side logs. Nil discards them.
	Logger *slog.Logger
}

// New returns the platform MCP server. Organizations live in memory, in
// this server: several servers do not share them.
func New(opts *Options) *mcp.Server {
	var o Options
	if opts != nil {
		o = *opts
	}
	srv := mcp.NewServer(&mcp.Implementation{Name: Name, Title: "Platform (mcpgate example)", Version: Version},
		&mcp.ServerOptions{
			Instructions: "Platform administration for automated agents: environments and organizations.",
			Logger:       o.Logger,
		})
	if o.CallsLog != nil {
		srv.AddReceivingMiddleware(o.CallsLog.Middleware())
	}
	p := &platform{byName: map[string]Organization{}}

	mcp.AddTool(srv, &mcp.Tool{
		Name:        "list_environments",
		Title:       "List environments",
		Description: "Lists the platform's deployment environments and their status.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, func(context.Context, *mcp.CallToolRequest, NoArgs) (*mcp.CallToolResult, EnvironmentList, error) {
		return nil, EnvironmentList{Environments: append([]Environment(nil), Environments...)}, nil
	})

	mcp.AddTool(srv, &mcp.Tool{
		Name:        "create_organization",
		Title:       "Create organization",
		Description: "Creates an organization and returns it.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false), OpenWorldHint: ptr(false)},
	}, p.createOrganization)

	return srv
}

type platform struct {
	mu     sync.Mutex
	byName map[string]Organization // by lower-cased name
}

func (p *platform) createOrganization(_ context.Context, req *mcp.CallToolRequest, in CreateOrgArgs) (*mcp.CallToolResult, Organization, error) {
	name := strings.TrimSpace(in.Name)
	switch {
	case name == "":
		return nil, Organization{}, errors.New("name must not be empty")
	case !utf8.ValidString(name):
		return nil, Organization{}, errors.New("name is not valid UTF-8")
	case utf8.RuneCountInString(name) > MaxNameLen:
		return nil, Organization{}, fmt.Errorf("name is longer than %d characters", MaxNameLen)
	case strings.ContainsFunc(name, unicode.IsControl):
		return nil, Organization{}, errors.New("name must not contain control characters")
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	org := Organization{
		ID:        "org_" + hex.EncodeToString(b[:]),
		Name:      name,
		CreatedBy: caller(req),
		CreatedAt: time.Now().UTC().Format(time.RFC3339),
	}
	key := strings.ToLower(name)
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.byName[key]; ok {
		return nil, Organization{}, fmt.Errorf("an organization named %q already exists (%s)", old.Name, old.ID)
	}
	if len(p.byName) >= MaxOrganizations {
		return nil, Organization{}, fmt.Errorf("too many organizations (at most %d)", MaxOrganizations)
	}
	p.byName[key] = org
	return nil, org, nil
}

// caller is the caller named by CallerHeader, or UnknownCaller.
func caller(req *mcp.CallToolRequest) string {
	if req == nil || req.Extra == nil || req.Extra.Header == nil {
		return UnknownCaller
	}
	v := strings.TrimSpace(req.Extra.Header.Get(CallerHeader))
	if v == "" || len(v) > maxCallerLen || !utf8.ValidString(v) {
		return UnknownCaller
	}
	return v
}

func ptr[T any](v T) *T { return &v }
