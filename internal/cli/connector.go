package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mcpgate/mcpgate/internal/connector"
	"github.com/mcpgate/mcpgate/internal/store"
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
	check := fs.Bool("check", false, "validate the config and load the key, then exit")
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
		if *check {
			fmt.Fprintln(stderr, "mcpgate connector:", err)
			return ExitInvalidConfig
		}
		return failed(stderr, err)
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok (connector %s, %d upstreams)\n", *path, cfg.Name, len(cfg.Upstreams))
		return ExitOK
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

// connectorsStatus is `mcpgate connectors status --config FILE [--json]`:
// the live connector instances every gateway replica recorded in the
// store (name, instance, version, upstreams, connected since, last seen).
// A row whose last_seen is older than connector.StaleAfter belongs to a
// replica that stopped without removing it and is marked stale.
func connectorsStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("connectors status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	st, cfg, code := openStore(fs, args, stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	cs, ok := st.(store.ConnectorStatus)
	if !ok {
		return failed(stderr, errors.New("this store does not record connector status"))
	}
	rows, err := cs.ListConnectorInstances(context.Background())
	if err != nil {
		return failed(stderr, err)
	}
	now := time.Now()
	type line struct {
		store.ConnectorInstance
		Stale bool `json:"stale"`
	}
	out := make([]line, 0, len(rows))
	for _, r := range rows {
		out = append(out, line{r, now.Sub(r.LastSeen) > connector.StaleAfter})
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return ExitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONNECTOR\tINSTANCE\tVERSION\tCLIENT\tFROM\tSTREAMS\tCONNECTED\tLAST SEEN\tUPSTREAMS")
	for _, l := range out {
		seen := now.Sub(l.LastSeen).Round(time.Second).String() + " ago"
		if l.Stale {
			seen += " (stale)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", l.Connector, l.Instance, l.Version, l.ClientID, l.RemoteAddr,
			l.Streams, l.ConnectedAt.Local().Format(time.DateTime), seen, strings.Join(l.Upstreams, " "))
	}
	_ = tw.Flush()
	// Configured connectors with no live instance are worth a line each.
	for _, c := range cfg.Connectors {
		if !slices.ContainsFunc(out, func(l line) bool { return l.Connector == c.Name && !l.Stale }) {
			fmt.Fprintf(stdout, "connector %s: no live instance\n", c.Name)
		}
	}
	return ExitOK
}
