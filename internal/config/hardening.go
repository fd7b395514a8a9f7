package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// Defaults of the resource limits that keep one client from exhausting
// the gateway (audit finding 9).
const (
	DefaultSessionsPerUser   = 20
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadBodyTimeout   = 60 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
	MaxMaxHeaderBytes        = 16 << 20
	MinMaxHeaderBytes        = 4 << 10
	// DefaultMaxBatch bounds a JSON-RPC batch: each request of one becomes
	// a pending call (a goroutine and a timer in a bridge session), and
	// MCP 2025-06-18 and later send no batches at all.
	DefaultMaxBatch = 100
	MaxMaxBatch     = 10000
	// DefaultInitializesPerMinute bounds session churn per user: each
	// initialize may start a process.
	DefaultInitializesPerMinute = 30
	MaxInitializesPerMinute     = 100000
)

// hardeningDefaults fills the limits and proxy settings left unset.
func (c *Config) hardeningDefaults() {
	l := &c.Limits
	if l.SessionsPerUser == 0 {
		l.SessionsPerUser = DefaultSessionsPerUser
	}
	if l.ReadHeaderTimeout == 0 {
		l.ReadHeaderTimeout = Duration(DefaultReadHeaderTimeout)
	}
	if l.ReadBodyTimeout == 0 {
		l.ReadBodyTimeout = Duration(DefaultReadBodyTimeout)
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = Duration(DefaultIdleTimeout)
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxBatch == 0 {
		l.MaxBatch = DefaultMaxBatch
	}
	if l.InitsPerMinute == 0 {
		l.InitsPerMinute = DefaultInitializesPerMinute
	}
}

// hardening checks the limits and trusted_proxies.
func (v *validator) hardening() {
	l := v.c.Limits
	if l.SessionsPerUser != 0 || v.written("limits.sessions_per_user") {
		if l.SessionsPerUser <= 0 {
			v.add("limits.sessions_per_user", "must be greater than 0, got %d", l.SessionsPerUser)
		}
	}
	if l.MaxHeaderBytes != 0 || v.written("limits.max_header_bytes") {
		if l.MaxHeaderBytes < MinMaxHeaderBytes || l.MaxHeaderBytes > MaxMaxHeaderBytes {
			v.add("limits.max_header_bytes", "must be between %d and %d, got %d", MinMaxHeaderBytes, MaxMaxHeaderBytes, l.MaxHeaderBytes)
		}
	}
	if l.MaxBatch != 0 || v.written("limits.max_batch") {
		if l.MaxBatch <= 0 || l.MaxBatch > MaxMaxBatch {
			v.add("limits.max_batch", "must be between 1 and %d, got %d", MaxMaxBatch, l.MaxBatch)
		}
	}
	if l.InitsPerMinute != 0 || v.written("limits.initializes_per_minute") {
		if l.InitsPerMinute <= 0 || l.InitsPerMinute > MaxInitializesPerMinute {
			v.add("limits.initializes_per_minute", "must be between 1 and %d, got %d", MaxInitializesPerMinute, l.InitsPerMinute)
		}
	}
	v.duration("limits.read_header_timeout", l.ReadHeaderTimeout)
	v.duration("limits.read_body_timeout", l.ReadBodyTimeout)
	v.duration("limits.idle_timeout", l.IdleTimeout)
	for i, p := range v.c.TrustedProxies {
		if msg := checkProxy(p); msg != "" {
			v.add(fmt.Sprintf("trusted_proxies[%d]", i), "%s", msg)
		}
	}
}

// checkProxy accepts a CIDR ("10.0.0.0/8") or a single IP address.
func checkProxy(s string) string {
	if strings.Contains(s, "/") {
		if _, err := netip.ParsePrefix(s); err != nil {
			return fmt.Sprintf("%q is not a CIDR such as 10.0.0.0/8 or fd00::/8", s)
		}
		return ""
	}
	if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
		return fmt.Sprintf("%q is not an IP address or CIDR", s)
	}
	return ""
}

// defaultKeyFile puts an unconfigured vault key next to the SQLite
// database (DefaultVaultKeyFile for the default database and PostgreSQL)
// and remembers that it was not configured. The vault key seals the
// session key and the token-signing keys kept in the store, so mcpgate
// always has one; an unconfigured one is created on first start.
func (v *Vault) defaultKeyFile(st Store) {
	v.derived = true
	if st.SQLite != "" && st.SQLite != ":memory:" && st.SQLite != DefaultSQLitePath {
		v.KeyFile = filepath.Join(filepath.Dir(st.SQLite), "vault.key")
	}
}

// KeyFileDefaulted reports whether KeyFile is the default rather than
// configured: then a missing file is created on first start.
func (v Vault) KeyFileDefaulted() bool { return v.derived }
