package connector

import (
	"os"
	"regexp"
	"testing"
)

// TestReasonCodes: every reason the hub closes an instance for has a code
// of its own (a new reason added to hub.go without one would show up in
// metrics as "other").
func TestReasonCodes(t *testing.T) {
	src, err := os.ReadFile("hub.go")
	if err != nil {
		t.Fatal(err)
	}
	literals := regexp.MustCompile(`\.close\("([^"]*)"`).FindAllSubmatch(src, -1)
	if len(literals) < 5 {
		t.Fatalf("found only %d close reasons in hub.go", len(literals))
	}
	for _, l := range literals {
		if code := ReasonCode(string(l[1])); code == "other" {
			t.Errorf("close reason %q has no code", l[1])
		}
	}
	tests := []struct{ reason, want string }{
		{"connection lost", "connection_lost"},
		{"control stream: frame too large", "control_error"},
		{"the client was cut off", "cut_off"},
		{"", "ended"},
		{"anything else", "other"},
	}
	for _, tt := range tests {
		if got := ReasonCode(tt.reason); got != tt.want {
			t.Errorf("ReasonCode(%q) = %q, want %q", tt.reason, got, tt.want)
		}
	}
}
