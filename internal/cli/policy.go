package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mcpgate/mcpgate/internal/catalog"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/store"
)

// policyUser is a user described on the command line or in a file.
type policyUser struct {
	Sub         string   `json:"sub"`
	Email       string   `json:"email"`
	Tenant      string   `json:"tenant"`
	Groups      []string `json:"groups"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
}

// policyTest answers "why can't Bob write?": the scopes a token would get
// and which policy granted or refused each.
func policyTest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "mcpgate.yaml", "config file")
	userArg := fs.String("user", "", "a configured username, @FILE (JSON user), or inline JSON {\"sub\":…,\"tenant\":…,\"groups\":[…],\"permissions\":[…]}")
	clientID := fs.String("client", "", "client id (a configured client, or any id for a user-delegated client)")
	serverName := fs.String("server", "", "server name")
	scope := fs.String("scope", "", "space-separated scopes the client asks for (default: all the server offers)")
	if err := fs.Parse(args); err != nil {
		return ExitInvalidConfig
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return reportConfigError(stderr, err)
	}
	cat, err := catalog.Compile(cfg, strings.TrimRight(cfg.PublicURL, "/"))
	if err != nil {
		fmt.Fprintln(stderr, "mcpgate:", err)
		return ExitInvalidConfig
	}
	srv := cfg.ServerByName(*serverName)
	if srv == nil {
		fmt.Fprintf(stderr, "mcpgate: unknown server %q\n", *serverName)
		return ExitInvalidConfig
	}
	client := store.Client{ID: *clientID, Name: *clientID}
	for _, c := range cat.Clients() {
		if c.ID == *clientID {
			client = c
		}
	}
	var user *store.User
	if *userArg != "" {
		u, err := resolvePolicyUser(cfg, cat, *userArg)
		if err != nil {
			fmt.Fprintln(stderr, "mcpgate:", err)
			return ExitInvalidConfig
		}
		user = u
	}
	if len(cfg.Policies) == 0 {
		fmt.Fprintf(stdout, "no policies configured: every scope of %s (%s) may be granted\n", srv.Name, strings.Join(srv.Scopes, " "))
		return ExitOK
	}
	in := catalog.PolicyInput(user, client, srv)
	d := cat.Policies().GrantWithin(in, strings.Fields(*scope), srv.Scopes, cat.Server(srv.Name).Hierarchy)
	who := "machine client " + client.ID
	if user != nil {
		who = fmt.Sprintf("user %s (tenant %q, groups %v, permissions %v) via client %s", user.ID, user.Tenant, user.Groups, user.Permissions, client.ID)
	}
	fmt.Fprintf(stdout, "%s on server %s\n\npolicies:\n", who, srv.Name)
	for _, p := range d.Evaluated {
		state := "does not match"
		if p.Matched {
			state = "matches"
		}
		if p.Err != "" {
			state = "error (counts as not matching): " + p.Err
		}
		fmt.Fprintf(stdout, "  %-28q %s\n", p.Name, state)
	}
	fmt.Fprintf(stdout, "\nscopes:\n")
	for _, s := range d.PerScope {
		if s.Granted {
			fmt.Fprintf(stdout, "  GRANTED  %-32s by %s\n", s.Scope, strings.Join(s.By, ", "))
		} else {
			fmt.Fprintf(stdout, "  DENIED   %-32s %s\n", s.Scope, s.Reason)
		}
	}
	fmt.Fprintf(stdout, "\ntoken scope: %q\n", strings.Join(d.Granted, " "))
	return ExitOK
}

func resolvePolicyUser(cfg *config.Config, cat *catalog.Catalog, arg string) (*store.User, error) {
	var pu policyUser
	switch {
	case strings.HasPrefix(arg, "@"):
		data, err := os.ReadFile(arg[1:])
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(data, &pu); err != nil {
			return nil, fmt.Errorf("%s: %w", arg[1:], err)
		}
	case strings.HasPrefix(strings.TrimSpace(arg), "{"):
		if err := json.Unmarshal([]byte(arg), &pu); err != nil {
			return nil, fmt.Errorf("--user: %w", err)
		}
	default:
		for _, u := range cfg.Users {
			if u.Username == arg {
				pu = policyUser{Sub: u.Username, Email: u.Email, Tenant: u.Tenant, Groups: u.Groups, Roles: u.Roles, Permissions: u.Permissions}
			}
		}
		if pu.Sub == "" {
			return nil, fmt.Errorf("no configured user %q (pass @FILE or inline JSON for others)", arg)
		}
	}
	roles, perms := cat.TenantGrants(pu.Tenant, pu.Groups)
	u := &store.User{ID: pu.Sub, Email: pu.Email, Tenant: pu.Tenant, Groups: pu.Groups,
		Roles: appendUnique(pu.Roles, roles), Permissions: appendUnique(pu.Permissions, perms)}
	return u, nil
}

func appendUnique(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, s := range b {
		found := false
		for _, x := range out {
			found = found || x == s
		}
		if !found {
			out = append(out, s)
		}
	}
	return out
}
