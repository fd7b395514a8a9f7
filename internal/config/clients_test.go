package config

import (
	"testing"
	"time"
)

// TestClientLimitDefaults: the registration and metadata document limits
// (issue 8, finding 9) default to safe values.
func TestClientLimitDefaults(t *testing.T) {
	c, err := Parse(y(okServer), "gw.yaml", env())
	if err != nil {
		t.Fatal(err)
	}
	r := c.OAuth.Registration
	if r.MaxBodyBytes != 16<<10 || r.RateLimit.PerAddressPerMinute != 10 || r.RateLimit.GlobalPerMinute != 60 ||
		r.UnusedClientTTL.Std() != 24*time.Hour || r.IdleClientTTL.Std() != 90*24*time.Hour ||
		c.OAuth.ClientMetadataDocuments.MaxBytes != 16<<10 {
		t.Errorf("defaults: %+v, cimd %+v", r, c.OAuth.ClientMetadataDocuments)
	}
}

func TestClientLimitProblems(t *testing.T) {
	got := parseProblems(t, y(
		"oauth:",
		"  registration:",
		"    max_body_bytes: -1",
		"    rate_limit: {per_address_per_minute: -1, global_per_minute: -2}",
		"    unused_client_ttl: 48h",
		"    idle_client_ttl: 1h",
		"  client_metadata_documents: {max_bytes: 99999999}",
		"  clients:",
		"    - {id: rs, secret: 'rs-secret-0123456789', introspect: [nope]}",
		"    - {id: pub, introspect: ['*']}",
		okServer,
	), env())
	checkProblems(t, got, []want{
		{"oauth.registration.max_body_bytes", 3, "between"},
		{"oauth.registration.rate_limit.per_address_per_minute", 4, "greater than 0"},
		{"oauth.registration.rate_limit.global_per_minute", 4, "greater than 0"},
		{"oauth.registration.idle_client_ttl", 6, "unused_client_ttl"},
		{"oauth.client_metadata_documents.max_bytes", 7, "between"},
		{"oauth.clients[0].introspect[0]", 9, "not a server"},
		{"oauth.clients[1].introspect", 10, "confidential"},
	})
}
