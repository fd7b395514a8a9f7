// Command calendar-api serves the calendar example's downstream calendar
// API (see examples/calendar/api): a REST API that accepts only bearer
// tokens of its OAuth provider, checked at the provider's userinfo endpoint.
//
//	calendar-api -userinfo URL [-listen 127.0.0.1:0] [-cache 30s]
//
// It prints "calendar-api listening on http://ADDR" to stderr once it
// accepts connections, and stops on SIGINT or SIGTERM. Events live in
// memory.
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

	"github.com/mcpgate/mcpgate/examples/calendar/api"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "serve at http://`ADDR` (port 0: any free port)")
	userinfo := flag.String("userinfo", "", "the OAuth provider's userinfo endpoint `URL` (required), e.g. http://127.0.0.1:9400/userinfo")
	cacheFor := flag.Duration("cache", api.DefaultCacheFor, "reuse a token's userinfo answer for this `long` (negative: never)")
	flag.Parse()
	if flag.NArg() > 0 || *userinfo == "" {
		fmt.Fprintln(os.Stderr, "usage: calendar-api -userinfo URL [-listen ADDR] [-cache DURATION]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	if err := run(*listen, *userinfo, *cacheFor); err != nil {
		fmt.Fprintln(os.Stderr, "calendar-api:", err)
		os.Exit(1)
	}
}

func run(listen, userinfo string, cacheFor time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cacheFor == 0 {
		cacheFor = -1 // api.Options reads 0 as the default
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := api.New(api.Options{UserinfoURL: userinfo, CacheFor: cacheFor, Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "calendar-api listening on http://%s\n", ln.Addr())

	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
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
