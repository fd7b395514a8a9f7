// Command mcpfixture runs mcpgate's MCP test fixture server (see
// internal/fixture) over stdio, Streamable HTTP (/mcp) and/or legacy
// HTTP+SSE (/sse).
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

	"github.com/mcpgate/mcpgate/internal/fixture"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {
	httpAddr := flag.String("http", "", "serve Streamable HTTP at http://`ADDR`/mcp (sessions up to protocol 2025-11-25, stateless from 2026-07-28)")
	sseAddr := flag.String("sse", "", "serve legacy HTTP+SSE at http://`ADDR`/sse")
	stdio := flag.Bool("stdio", false, "serve over stdin/stdout")
	crash := flag.Bool("crash-tool", false, "add the crash tool, which exits with status 3")
	maxVersion := flag.String("max-version", "", "newest protocol `REVISION` to speak (2025-11-25: a server that predates 2026-07-28)")
	flag.Parse()
	if flag.NArg() > 0 || (*httpAddr == "" && *sseAddr == "" && !*stdio) {
		fmt.Fprintln(os.Stderr, "usage: mcpfixture [-crash-tool] (-stdio | -http ADDR | -sse ADDR)...")
		flag.PrintDefaults()
		os.Exit(2)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := fixture.NewServer(&fixture.Options{CrashTool: *crash, Logger: logger, InputRequiredPrompt: true, MaxVersion: *maxVersion})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// On shutdown, end the MCP sessions first so that long-lived SSE
	// streams do not hold up the HTTP servers' graceful shutdown.
	go func() {
		<-ctx.Done()
		for ss := range srv.Sessions() {
			_ = ss.Close()
		}
	}()

	errc := make(chan error, 3)
	n := 0
	if *httpAddr != "" {
		n++
		go func() { errc <- serveHTTP(ctx, *httpAddr, "/mcp", fixture.NewStreamableHandler(srv, logger)) }()
	}
	if *sseAddr != "" {
		n++
		go func() { errc <- serveHTTP(ctx, *sseAddr, "/sse", fixture.NewSSEHandler(srv)) }()
	}
	if *stdio {
		n++
		go func() { errc <- srv.Run(ctx, &mcp.StdioTransport{}) }()
	}

	// The first server to stop (stdin EOF, listener failure, or a signal)
	// stops the others.
	var first error
	for i := range n {
		err := <-errc
		if i == 0 {
			first = err
			cancel()
		}
	}
	if first != nil && !errors.Is(first, context.Canceled) {
		fmt.Fprintln(os.Stderr, "mcpfixture:", first)
		os.Exit(1)
	}
}

// serveHTTP serves h at path on addr until ctx is done.
func serveHTTP(ctx context.Context, addr, path string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(path, h)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "mcpfixture listening on http://%s%s\n", ln.Addr(), path)

	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	<-done
	return ctx.Err()
}
