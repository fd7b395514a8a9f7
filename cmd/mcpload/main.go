// Command mcpload is mcpgate's load generator and baseline proxy.
//
//	mcpload run   -url URL [flags]      closed-loop MCP tools/call load
//	mcpload proxy -listen ADDR -target URL   bare httputil.ReverseProxy
//
// Both subcommands only ever talk to loopback addresses. See
// docs/performance.md for how scripts/bench.sh uses them.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
