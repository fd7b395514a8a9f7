// Command calendar-server serves the calendar example's MCP server (see
// examples/calendar/server) over Streamable HTTP at http://ADDR/mcp.
//
//	calendar-server [-listen 127.0.0.1:0] [-db FILE | -api URL] [-calls-log FILE]
//
// With -api, the events live in the downstream calendar API at URL (see
// examples/calendar/api and cmd/calendar-api), which each tool calls with the
// Authorization header its MCP request carried: behind mcpgate in
// credentials mode "connection", the user's own token of the calendar.
//
// It prints "calendar-server listening on http://ADDR/mcp" to stderr once
// it accepts connections, and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/mcpgate/mcpgate/examples/callslog"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/examples/calendar/server"
	"github.com/mcpgate/mcpgate/internal/fixture"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "serve Streamable HTTP at http://`ADDR`/mcp (port 0: any free port)")
	dbPath := flag.String("db", "", "SQLite database `FILE` for the events (default: in memory, lost on exit)")
	callsLog := flag.String("calls-log", "", "append one JSON line per tool call to `FILE`")
	apiURL := flag.String("api", "", "keep the events in the calendar API at `URL` (e.g. http://127.0.0.1:9500), called as the caller, instead of in -db")
	flag.Parse()
	if flag.NArg() > 0 || (*apiURL != "" && *dbPath != "") {
		fmt.Fprintln(os.Stderr, "usage: calendar-server [-listen ADDR] [-db FILE | -api URL] [-calls-log FILE]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if err := run(*listen, *dbPath, *apiURL, *callsLog); err != nil {
		fmt.Fprintln(os.Stderr, "calendar-server:", err)
		os.Exit(1)
	}
}

func run(listen, dbPath, apiURL, callsLogPath string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := &server.Options{Logger: logger, API: apiURL}
	var store *server.Store
	if apiURL != "" {
		if u, err := url.Parse(apiURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("-api %q: want an http(s) URL", apiURL)
		}
	} else {
		var err error
		if store, err = server.OpenStore(ctx, dbPath); err != nil {
			return err
		}
		defer store.Close()
	}
	if callsLogPath != "" {
		cl, f, err := callslog.Open(callsLogPath)
		if err != nil {
			return err
		}
		defer f.Close()
		opts.CallsLog = cl
	}
	srv := server.New(store, opts)

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	// One endpoint for every protocol version: sessions up to 2025-11-25,
	// stateless from 2026-07-28 (the same handler as mcpgate's test fixture).
	mux.Handle("/mcp", fixture.NewStreamableHandler(srv, logger))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if apiURL != "" {
		fmt.Fprintf(os.Stderr, "calendar-server: events in the calendar API at %s, called as each caller\n", apiURL)
	}
	fmt.Fprintf(os.Stderr, "calendar-server listening on http://%s/mcp\n", ln.Addr())

	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// End the MCP sessions first so that open SSE streams do not hold up
	// the graceful shutdown.
	for ss := range srv.Sessions() {
		_ = ss.Close()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
