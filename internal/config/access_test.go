package config

import (
	"testing"
	"time"
)

// TestRevocationRefresh: the default, and the bounds (a cut-off on another
// replica must apply within a minute; faster than 100ms is a store poll
// storm).
func TestRevocationRefresh(t *testing.T) {
	c, err := Parse([]byte(okServer), "gw.yaml", env())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.OAuth.RevocationRefresh.Std(); got != 3*time.Second {
		t.Errorf("default revocation_refresh = %s, want 3s", got)
	}
	for _, v := range []string{"50ms", "2m"} {
		doc := "oauth: {revocation_refresh: " + v + "}\n" + okServer
		checkProblems(t, parseProblems(t, []byte(doc), env()), []want{{"oauth.revocation_refresh", 1, "between 100ms and 1m"}})
	}
	c, err = Parse([]byte("oauth: {revocation_refresh: 500ms}\n"+okServer), "gw.yaml", env())
	if err != nil || c.OAuth.RevocationRefresh.Std() != 500*time.Millisecond {
		t.Errorf("500ms: %v %v", c, err)
	}
}
