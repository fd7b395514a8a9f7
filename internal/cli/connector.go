package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcpgate/mcpgate/internal/connector"
)

// connectorRun is `mcpgate connector --config FILE`: the outbound-only
// connector (issue 10). It dials out to the gateway and serves only the
// upstreams its own config lists; it listens on nothing.
func connectorRun(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "keygen" {
		return connectorKeygen(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("connector", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "connector.yaml", "connector config file")
	if err := fs.Parse(args); err != nil {
		return ExitInvalidConfig
	}
	cfg, err := connector.LoadAgentConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, "mcpgate connector:", err)
		return ExitInvalidConfig
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	agent, err := connector.NewAgent(cfg, Version, log)
	if err != nil {
		return failed(stderr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "mcpgate connector %s (instance %s) dialing %s\n", cfg.Name, cfg.Instance, cfg.Gateway)
	if err := agent.Run(ctx); err != nil {
		return failed(stderr, err)
	}
	return ExitOK
}

// connectorKeygen is `mcpgate connector keygen --key FILE [--kid ID]`: a
// new private key for private_key_jwt, and its public JWK Set on stdout
// (the connector client's jwks in the gateway's config).
func connectorKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("connector keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("key", "connector.pem", "where to write the private key (must not exist)")
	kid := fs.String("kid", "connector-1", "key id (the connector config's key_id)")
	if err := fs.Parse(args); err != nil {
		return ExitInvalidConfig
	}
	jwks, err := connector.KeyGen(*path, *kid)
	if err != nil {
		return failed(stderr, err)
	}
	fmt.Fprintln(stdout, string(jwks))
	return ExitOK
}
