package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// proxyConfig is the validated configuration of "mcpload proxy".
type proxyConfig struct {
	Listen string
	Target *url.URL
}

func parseProxyArgs(args []string, stderr io.Writer) (proxyConfig, error) {
	var cfg proxyConfig
	var target string
	fs := flag.NewFlagSet("mcpload proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:0", "loopback address to listen on")
	fs.StringVar(&target, "target", "", "upstream MCP endpoint (loopback only), e.g. http://127.0.0.1:9000/mcp")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return cfg, usagef("unexpected arguments: %q", fs.Args())
	}
	if err := checkLoopbackListen(cfg.Listen); err != nil {
		return cfg, err
	}
	u, err := parseLoopbackURL("target", target)
	if err != nil {
		return cfg, err
	}
	cfg.Target = u
	return cfg, nil
}

// newBareProxy returns the baseline gateway: an httputil.ReverseProxy that
// sends each request, path and query unchanged, to target's scheme and host
// (so http://PROXY/mcp reaches http://TARGET/mcp), flushes immediately so SSE
// streams, and does nothing else. Its transport is loopback-only with an idle
// pool sized for benchmark concurrency; the default of 2 idle connections
// per host would make it reconnect on most requests and understate the
// floor.
func newBareProxy(target *url.URL, errLog *log.Logger) *httputil.ReverseProxy {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: loopbackOnlyControl}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = target.Scheme
			pr.Out.URL.Host = target.Host
			pr.Out.Host = "" // send the target's host, as SetURL does
		},
		FlushInterval: -1,
		Transport:     tr,
		ErrorLog:      errLog,
	}
}

// fullDuplex lets h keep reading the request body after it has started the
// response. Without it the HTTP/1 server drains and closes the request body
// as soon as the response headers go out; when the upstream answers before
// the transport's final read of the request body (which checks that the
// body is no longer than its Content-Length), that read fails with "invalid
// Read on closed Body" and the transport drops the upstream connection,
// cutting the response stream short (golang/go#40747, #15527). A fast MCP
// upstream answering a POST with an SSE stream hits this every few thousand
// calls. HTTP/2 requests do not support (or need) the call; its error is
// ignored.
func fullDuplex(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		h.ServeHTTP(w, r)
	})
}

// proxyCommand implements "mcpload proxy": it serves until ctx is done.
func proxyCommand(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, err := parseProxyArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "mcpload proxy: %v\n", err)
		return exitUsage
	}
	if err := serveProxy(ctx, cfg, stderr, nil); err != nil {
		fmt.Fprintf(stderr, "mcpload proxy: %v\n", err)
		return exitFail
	}
	return exitOK
}

// serveProxy listens on cfg.Listen and proxies to cfg.Target until ctx is
// done. If ready is non-nil it receives the bound address once listening.
func serveProxy(ctx context.Context, cfg proxyConfig, stderr io.Writer, ready chan<- string) error {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	errLog := log.New(stderr, "mcpload proxy: ", log.LstdFlags)
	srv := &http.Server{
		Handler:           fullDuplex(newBareProxy(cfg.Target, errLog)),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          errLog,
	}
	addr := ln.Addr().String()
	fmt.Fprintf(stderr, "mcpload proxy listening on http://%s\n", addr)
	fmt.Fprintf(stderr, "mcpload proxy: forwarding http://%s%s -> %s\n", addr, cfg.Target.EscapedPath(), cfg.Target)
	if ready != nil {
		ready <- addr
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	// Long-lived SSE streams keep Shutdown waiting; bound it.
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	return nil
}
