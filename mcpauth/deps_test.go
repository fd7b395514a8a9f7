package mcpauth_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps mcpauth a library MCP server authors can take
// without taking mcpgate: nothing internal, no database drivers, no
// metrics stack.
func TestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/mcpgate/mcpgate/mcpauth").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"github.com/mcpgate/mcpgate/internal",
		"database/sql",
		"github.com/jackc/",
		"modernc.org/sqlite",
		"github.com/mattn/go-sqlite3",
		"github.com/lib/pq",
		"github.com/prometheus/",
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list returned nothing")
	}
	sawJOSE := false
	for _, dep := range deps {
		sawJOSE = sawJOSE || dep == "github.com/go-jose/go-jose/v4"
		for _, f := range forbidden {
			f = strings.TrimSuffix(f, "/")
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("mcpauth depends on %s", dep)
			}
		}
	}
	if !sawJOSE {
		t.Errorf("go-jose missing from the dependencies: is the list complete?\n%s", out)
	}
}
