package main

import (
	"context"
	"fmt"
	"io"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // the run (or the proxy) failed
	exitUsage = 2 // bad command line
)

const topUsage = `usage:
  mcpload run   -url URL [-sessions 32] [-duration 10s] [-requests N] [-tool echo]
                [-args '{"text":"hi"}'] [-bearer TOKEN] [-warmup 1s] [-timeout 10s]
                [-protocol VERSION | -era 2025-11-25|2026-07-28] [-sse]
  mcpload proxy [-listen 127.0.0.1:0] -target URL

Run "mcpload run -h" or "mcpload proxy -h" for the flags of each subcommand.
Only loopback hosts (127.0.0.0/8, ::1, localhost) are accepted.
`

// realMain dispatches to a subcommand and returns the process exit code.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return runCommand(ctx, args[1:], stdout, stderr)
	case "proxy":
		return proxyCommand(ctx, args[1:], stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, topUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mcpload: unknown subcommand %q\n%s", args[0], topUsage)
		return exitUsage
	}
}

// usageError marks an error caused by the command line (exit code 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}
