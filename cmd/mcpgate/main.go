// Command mcpgate is the identity-aware MCP gateway. See internal/cli.
package main

import (
	"os"

	"github.com/mcpgate/mcpgate/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
