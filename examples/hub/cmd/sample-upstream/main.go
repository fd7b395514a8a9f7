// Command sample-upstream runs one upstream of the hub example: a code
// host, cloud or tracker stand-in that accepts only tokens mcpgate minted
// for it, and logs the real user of every call.
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

	"github.com/mcpgate/mcpgate/examples/hub/sample"
)

func main() {
	name := flag.String("name", "", "codehost, cloud or tracker")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	issuer := flag.String("issuer", "http://127.0.0.1:8080", "mcpgate's public URL (the token issuer)")
	audience := flag.String("audience", "", "this upstream's audience (default: its own URL)")
	logFile := flag.String("log", "", "append the call log here (default: stderr)")
	flag.Parse()
	if *name == "" {
		fmt.Fprintln(os.Stderr, "usage: sample-upstream -name codehost|cloud|tracker [-listen ADDR] [-issuer URL] [-audience URL] [-log FILE]")
		os.Exit(2)
	}
	out := os.Stderr
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		out = f
	}
	log := slog.New(slog.NewTextHandler(out, nil))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	url := "http://" + ln.Addr().String() + "/mcp"
	aud := *audience
	if aud == "" {
		aud = url
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", sample.Handler(*name, *issuer, aud, log))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "sample-upstream %s listening on %s\n", *name, url)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
