// Command platform-server serves the machine-agents example's platform MCP
// server (see examples/machine-agents/server) over Streamable HTTP at
// http://ADDR/mcp.
//
//	platform-server [-listen 127.0.0.1:0] [-calls-log FILE]
//
// It prints "platform-server listening on http://ADDR/mcp" to stderr once
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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/examples/machine-agents/server"
	"github.com/mcpgate/mcpgate/internal/fixture"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "serve Streamable HTTP at http://`ADDR`/mcp (port 0: any free port)")
	callsLog := flag.String("calls-log", "", "append one JSON line per tool call to `FILE`")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: platform-server [-listen ADDR] [-calls-log FILE]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if err := run(*listen, *callsLog); err != nil {
		fmt.Fprintln(os.Stderr, "platform-server:", err)
		os.Exit(1)
	}
}

func run(listen, callsLogPath string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := &server.Options{Logger: logger}
	if callsLogPath != "" {
		cl, f, err := callslog.Open(callsLogPath)
		if err != nil {
			return err
		}
		defer f.Close()
		opts.CallsLog = cl
	}
	srv := server.New(opts)

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	// One endpoint for every protocol version: sessions up to 2025-11-25,
	// stateless from 2026-07-28 (the same handler as mcpgate's test fixture).
	mux.Handle("/mcp", fixture.NewStreamableHandler(srv, logger))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "platform-server listening on http://%s/mcp\n", ln.Addr())

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
