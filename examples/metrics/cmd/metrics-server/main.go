// Command metrics-server serves the metrics example's MCP server (see
// examples/metrics/server) over Streamable HTTP at http://ADDR/mcp.
//
//	metrics-server -issuer URL -db DSN [-listen 127.0.0.1:0] [-audience URL]
//	               [-init ADMIN_DSN] [-role-prefix P] [-calls-log FILE]
//
// Every request must carry a token mcpgate (-issuer) minted for this
// server's audience; the tools run as the token's subject's database role.
// -db should log in as metrics_gateway (schema.sql). -init applies
// schema.sql first, as ADMIN_DSN (a superuser of the same database).
//
// It prints "metrics-server listening on http://ADDR/mcp" to stderr once it
// accepts connections, and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mcpgate/mcpgate/examples/metrics"
	"github.com/mcpgate/mcpgate/examples/metrics/server"
	"github.com/mcpgate/mcpgate/mcpauth"
)

type flags struct {
	listen, issuer, audience, db, init, rolePrefix, callsLog string
}

func main() {
	var f flags
	flag.StringVar(&f.listen, "listen", "127.0.0.1:0", "serve Streamable HTTP at http://`ADDR`/mcp (port 0: any free port)")
	flag.StringVar(&f.issuer, "issuer", "", "mcpgate's public `URL` (the issuer of the tokens it mints; required)")
	flag.StringVar(&f.audience, "audience", "", "this server's audience in mcpgate's config (default: http://ADDR/mcp)")
	flag.StringVar(&f.db, "db", "", "PostgreSQL `DSN` that logs in as metrics_gateway (required)")
	flag.StringVar(&f.init, "init", "", "apply schema.sql first, connected as this superuser `DSN` (same database as -db)")
	flag.StringVar(&f.rolePrefix, "role-prefix", "", "`PREFIX` of the database roles (role = PREFIX + token subject)")
	flag.StringVar(&f.callsLog, "calls-log", "", "append one JSON line per tool call to `FILE`")
	flag.Parse()
	if flag.NArg() > 0 || f.issuer == "" || f.db == "" {
		fmt.Fprintln(os.Stderr, "usage: metrics-server -issuer URL -db DSN [-listen ADDR] [-audience URL] [-init ADMIN_DSN] [-role-prefix P] [-calls-log FILE]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if err := run(f); err != nil {
		fmt.Fprintln(os.Stderr, "metrics-server:", err)
		os.Exit(1)
	}
}

func run(f flags) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	if f.init != "" {
		conn, err := pgx.Connect(ctx, f.init)
		if err != nil {
			return fmt.Errorf("-init: %w", err)
		}
		err = metrics.ApplySchema(ctx, conn, f.rolePrefix)
		_ = conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return err
		}
	}
	pool, err := pgxpool.New(ctx, f.db)
	if err != nil {
		return fmt.Errorf("-db: %w", err)
	}
	defer pool.Close()
	opts := &server.Options{RolePrefix: f.rolePrefix, Logger: logger}
	if f.callsLog != "" {
		cl, err := os.OpenFile(f.callsLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		defer cl.Close()
		opts.CallsLog = cl
	}
	srv, err := server.New(ctx, pool, opts)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String() + "/mcp"
	if f.audience == "" {
		f.audience = url
	}
	v := mcpauth.NewVerifier(f.issuer, f.audience, &mcpauth.Options{Logger: logger})
	mux := http.NewServeMux()
	mux.Handle("/mcp", srv.Handler(v))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "metrics-server listening on %s (issuer %s, audience %s)\n", url, f.issuer, f.audience)

	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// End the MCP sessions first so that open SSE streams do not hold up
	// the graceful shutdown.
	for ss := range srv.MCP().Sessions() {
		_ = ss.Close()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
