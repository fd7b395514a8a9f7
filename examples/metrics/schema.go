// Package metrics holds the database schema of mcpgate's metrics example
// (scenario S2: per-user data access). The MCP server is in
// examples/metrics/server, its command in examples/metrics/cmd/metrics-server.
package metrics

import (
	"context"
	_ "embed"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
)

// Schema is schema.sql: tables, row-level security policies, the roles
// alice, bob, carol and metrics_gateway, and sample rows. It is idempotent.
//
//go:embed schema.sql
var Schema string

// GatewayRole is the role the MCP server logs in as (before the prefix).
const GatewayRole = "metrics_gateway"

// prefixRE is what a role prefix may be: it is put in front of role names.
var prefixRE = regexp.MustCompile(`^[a-z0-9_]*$`)

// ValidPrefix reports whether prefix may be used as a role prefix.
func ValidPrefix(prefix string) bool { return len(prefix) <= 32 && prefixRE.MatchString(prefix) }

// ApplySchema runs Schema on conn, which must be a superuser's (it creates
// roles) connected to the metrics database, with every role name prefixed
// by rolePrefix ("" for none; see ValidPrefix).
func ApplySchema(ctx context.Context, conn *pgx.Conn, rolePrefix string) error {
	if !ValidPrefix(rolePrefix) {
		return fmt.Errorf("role prefix %q: only a-z, 0-9 and _ (at most 32)", rolePrefix)
	}
	if _, err := conn.Exec(ctx, "SELECT set_config('metrics.role_prefix', $1, false)", rolePrefix); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	// Without arguments, Exec uses the simple protocol: the whole file,
	// BEGIN to COMMIT, in one round trip.
	if _, err := conn.Exec(ctx, Schema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	return nil
}
