package server

import (
	"errors"
	"testing"
)

// The end-to-end test (../metrics_e2e_test.go) runs the server against
// PostgreSQL behind mcpgate; this checks which subjects may name a role.
func TestRoleFor(t *testing.T) {
	s := &Server{prefix: "t1_", login: "t1_metrics_gateway"}
	for _, c := range []struct {
		subject, role string
	}{
		{"alice", "t1_alice"},
		{"bob_2", "t1_bob_2"},
		{"", ""},
		{"Alice", ""},                  // not plain lower case
		{"alice@example.com", ""},      // not a plain name
		{`alice"; RESET ROLE; --`, ""}, // quoting is never relied on
		{"metrics_gateway", ""},        // the server's own login role
		{"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghi", ""}, // 3+61 > 63
	} {
		role, ok := s.roleFor(c.subject)
		if role != c.role || ok != (c.role != "") {
			t.Errorf("roleFor(%q) = %q, %v; want %q", c.subject, role, ok, c.role)
		}
	}
	if s := (&Server{login: "metrics_gateway"}); func() bool { _, ok := s.roleFor("pg_read_all_data"); return ok }() {
		t.Error("a pg_ role may be switched to")
	}
}

func TestNoAccess(t *testing.T) {
	var ue userError
	if err := noAccess("dave"); !errors.As(err, &ue) || err.Error() != "no database access for dave" {
		t.Errorf("noAccess(dave) = %v", err)
	}
	if err := noAccess("Dave Smith"); err.Error() != `no database access for "Dave Smith"` {
		t.Errorf("noAccess(Dave Smith) = %v", err)
	}
}
