// Package cli implements mcpgate's command line: parsing arguments,
// printing results, and exit codes. Each subcommand is a small function
// over the packages that do the work.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/internal/config"
)

// Exit codes.
const (
	ExitOK            = 0
	ExitFailure       = 1
	ExitInvalidConfig = 2 // also usage errors
)

// Version is set at build time with -ldflags.
var Version = "dev"

const usage = `mcpgate — an identity-aware gateway for MCP servers

Usage:
  mcpgate serve --config FILE     run the gateway and authorization server (SIGHUP reloads the config)
  mcpgate config check FILE       validate a config; exit 2 with every problem listed
  mcpgate migrate --config FILE   create or upgrade the store's tables
  mcpgate user add --config FILE --username NAME --email ADDR [--tenant T] [--group G]... [--role R]... [--permission P]...
                                  add (or update) a built-in user; the password is read from stdin
  mcpgate user disable|enable --config FILE --user ID
                                  cut a user off at once (revokes their grants), or let them back
  mcpgate user delete --config FILE --user ID
                                  remove a user with their grants and vaulted connections
  mcpgate user hash-password      read a password on stdin, print a bcrypt hash for the config
  mcpgate keys rotate --config FILE
                                  start signing with a new key; the old one stays published until its tokens expire
  mcpgate keys rotate-vault --config FILE --new-key-file FILE
                                  re-encrypt every vaulted connection with a new key
  mcpgate secret put --config FILE --name NAME [--tenant T]
                                  store a tenant's secret for a legacy API (static credentials) in the vault; read from stdin
  mcpgate grant revoke --config FILE --user ID [--client ID]
                                  revoke a user's grants (refresh tokens and remembered consent)
  mcpgate policy test --config FILE --user NAME|@FILE|JSON --client ID --server NAME [--scope "A B"]
                                  explain which scopes a token would get, and which policy decided each
  mcpgate connector --config FILE [--check]
                                  run an outbound-only connector: dial out to the gateway and serve
                                  the private upstreams its config lists (docs/connector.md); --check validates only
  mcpgate connector keygen --key FILE [--kid ID]
                                  make the connector's private key; prints the public JWK Set for the gateway's config
  mcpgate connectors status --config FILE [--json]
                                  live connector instances (every replica's), their version, upstreams, last seen
  mcpgate version                 print the version
`

// Main runs the command line and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitInvalidConfig
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "config":
		if len(args) >= 2 && args[1] == "check" {
			return configCheck(args[2:], stdout, stderr)
		}
	case "migrate":
		return migrate(args[1:], stdout, stderr)
	case "connector":
		return connectorRun(args[1:], stdout, stderr)
	case "connectors":
		if len(args) >= 2 && args[1] == "status" {
			return connectorsStatus(args[2:], stdout, stderr)
		}
	case "user":
		if len(args) >= 2 && args[1] == "add" {
			return userAdd(args[2:], os.Stdin, stdout, stderr)
		}
		if len(args) >= 2 && args[1] == "delete" {
			return userDelete(args[2:], stdout, stderr)
		}
		if len(args) >= 2 && (args[1] == "disable" || args[1] == "enable") {
			return userDisable(args[2:], args[1] == "enable", stdout, stderr)
		}
		if len(args) >= 2 && args[1] == "hash-password" {
			return hashPassword(os.Stdin, stdout, stderr)
		}
	case "policy":
		if len(args) >= 2 && args[1] == "test" {
			return policyTest(args[2:], stdout, stderr)
		}
	case "keys":
		if len(args) >= 2 && args[1] == "rotate" {
			return keysRotate(args[2:], stdout, stderr)
		}
		if len(args) >= 2 && args[1] == "rotate-vault" {
			return vaultRotate(args[2:], stdout, stderr)
		}
	case "secret":
		if len(args) >= 2 && args[1] == "put" {
			return secretPut(args[2:], os.Stdin, stdout, stderr)
		}
	case "grant":
		if len(args) >= 2 && args[1] == "revoke" {
			return grantRevoke(args[2:], stdout, stderr)
		}
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "mcpgate", Version)
		return ExitOK
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return ExitOK
	}
	fmt.Fprintf(stderr, "mcpgate: unknown command %q\n\n%s", strings.Join(args, " "), usage)
	return ExitInvalidConfig
}

func configCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file")
	if err := fs.Parse(args); err != nil {
		return ExitInvalidConfig
	}
	if *path == "" && fs.NArg() == 1 {
		*path = fs.Arg(0)
	}
	if *path == "" {
		fmt.Fprintln(stderr, "usage: mcpgate config check FILE")
		return ExitInvalidConfig
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return reportConfigError(stderr, err)
	}
	fmt.Fprintf(stdout, "%s: ok (%d servers)\n", *path, len(cfg.Servers))
	return ExitOK
}

func reportConfigError(stderr io.Writer, err error) int {
	var probs config.Problems
	if errors.As(err, &probs) {
		fmt.Fprintln(stderr, probs.Error())
		fmt.Fprintf(stderr, "%d problem(s) found\n", len(probs))
		return ExitInvalidConfig
	}
	fmt.Fprintln(stderr, "mcpgate:", err)
	return ExitInvalidConfig
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "mcpgate.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return ExitInvalidConfig
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return reportConfigError(stderr, err)
	}
	log := newLogger(cfg.Log, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the config; caught from the start, so an early one
	// never kills the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return failed(stderr, err)
	}
	go reloadOnHUP(ctx, a, *path, hup)
	fmt.Fprintf(stderr, "mcpgate listening on http://%s\n", a.Addr())
	fmt.Fprintf(stderr, "authorization server: %s\n", a.PublicURL())
	for _, ep := range a.Endpoints() {
		fmt.Fprintf(stderr, "MCP endpoint: %s\n", ep)
	}
	if m := a.MetricsAddr(); m != "" {
		fmt.Fprintf(stderr, "metrics (own listener): http://%s/metrics\n", m)
	}
	if err := a.Serve(ctx); err != nil {
		log.Error("serve failed", "err", err)
		return ExitFailure
	}
	return ExitOK
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// reloadOnHUP reloads the config file on every SIGHUP until ctx ends; the
// app logs each outcome and keeps serving the old config when the new one
// is invalid.
func reloadOnHUP(ctx context.Context, a *app.App, path string, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = a.ReloadFile(ctx, path)
		}
	}
}
