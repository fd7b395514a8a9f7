package connector

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// AgentConfig is the connector's own configuration (connector.yaml).
type AgentConfig struct {
	// Gateway is the gateway's public URL (its issuer), e.g.
	// https://gw.example; the connector dials wss://gw.example/connector/v1.
	Gateway string `yaml:"gateway"`
	// Name is the connector name the gateway's config lists for ClientID.
	Name string `yaml:"name"`
	// Instance tells instances of one name apart; default host name + pid.
	Instance string `yaml:"instance"`
	// ClientID is the operator-registered client the connector
	// authenticates as, with private_key_jwt (RFC 7523) signed by
	// PrivateKeyFile (PEM: PKCS#8, EC or RSA), under KeyID when set.
	ClientID       string `yaml:"client_id"`
	PrivateKeyFile string `yaml:"private_key_file"`
	KeyID          string `yaml:"key_id"`
	// CAFile adds trusted roots for the gateway's TLS certificate.
	CAFile string `yaml:"ca_file"`
	// Upstreams are the only addresses the connector will ever dial.
	Upstreams []AgentUpstream `yaml:"upstreams"`
	// MaxBackoff bounds the wait between reconnection attempts (default 60s).
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// AgentUpstream is one private upstream the connector may serve.
type AgentUpstream struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"` // http(s)://host:port/...: the connector dials host:port
	// Command, instead of URL, is a stdio MCP server the connector runs,
	// one process per gateway session, with only Env (and a few
	// variables such as PATH and HOME) in its environment, in Cwd.
	Command []string          `yaml:"command"`
	Env     map[string]string `yaml:"env"`
	Cwd     string            `yaml:"cwd"`
}

// varRE is ${VAR}, the only form expanded (a lone $ in a command or a
// URL stays as written).
var varRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// LoadAgentConfig reads and checks a connector configuration; ${VAR} is
// replaced by the environment variable VAR, which must be set.
func LoadAgentConfig(path string) (*AgentConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var missing []string
	text := varRE.ReplaceAllStringFunc(string(raw), func(m string) string {
		k := varRE.FindStringSubmatch(m)[1]
		v, ok := os.LookupEnv(k)
		if !ok {
			missing = append(missing, k)
		}
		return v
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: environment variables not set: %s", path, strings.Join(missing, ", "))
	}
	dec := yaml.NewDecoder(bytes.NewReader([]byte(text)))
	dec.KnownFields(true)
	var c AgentConfig
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// Check validates c and fills in defaults.
func (c *AgentConfig) Check() error {
	var errs []error
	u, err := url.Parse(c.Gateway)
	switch {
	case err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		errs = append(errs, fmt.Errorf("gateway: must be the gateway's absolute URL"))
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		// Plain http only for loopback (tests); a tunnel carries tokens.
		errs = append(errs, fmt.Errorf("gateway: plain http is only allowed for loopback; use https"))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("gateway: scheme must be https"))
	}
	c.Gateway = strings.TrimRight(c.Gateway, "/")
	if !ValidName(c.Name) {
		errs = append(errs, fmt.Errorf("name: %q is not a valid connector name", c.Name))
	}
	if c.Instance == "" {
		host, _ := os.Hostname()
		c.Instance = fmt.Sprintf("%s-%d", sanitize(host), os.Getpid())
	}
	if !instanceRE.MatchString(c.Instance) {
		errs = append(errs, fmt.Errorf("instance: %q may hold only letters, digits and _.:- (at most 64)", c.Instance))
	}
	if c.ClientID == "" {
		errs = append(errs, fmt.Errorf("client_id: is required"))
	}
	if c.PrivateKeyFile == "" {
		errs = append(errs, fmt.Errorf("private_key_file: is required (private_key_jwt)"))
	}
	if len(c.Upstreams) == 0 {
		errs = append(errs, fmt.Errorf("upstreams: at least one is required"))
	}
	if len(c.Upstreams) > MaxUpstreams {
		errs = append(errs, fmt.Errorf("upstreams: at most %d", MaxUpstreams))
	}
	seen := map[string]bool{}
	for i, up := range c.Upstreams {
		if !ValidName(up.Name) || seen[up.Name] {
			errs = append(errs, fmt.Errorf("upstreams[%d].name: %q is not a valid, unique name", i, up.Name))
		}
		seen[up.Name] = true
		switch {
		case up.URL != "" && len(up.Command) > 0:
			errs = append(errs, fmt.Errorf("upstreams[%d]: url and command are exclusive", i))
		case len(up.Command) > 0:
			if err := checkCommand(up.Command); err != nil {
				errs = append(errs, fmt.Errorf("upstreams[%d].command: %v", i, err))
			}
		default:
			if _, err := URLAddress(up.URL); err != nil {
				errs = append(errs, fmt.Errorf("upstreams[%d].url: %v", i, err))
			}
			if len(up.Env) > 0 || up.Cwd != "" {
				errs = append(errs, fmt.Errorf("upstreams[%d]: env and cwd are only for command", i))
			}
		}
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 60 * time.Second
	}
	if c.MaxBackoff < time.Second {
		errs = append(errs, fmt.Errorf("max_backoff: at least 1s"))
	}
	return errors.Join(errs...)
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 && (r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 || b.Len() > 40 {
		return "connector"
	}
	return b.String()
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// URLAddress is the host:port an http(s) upstream URL names (default
// ports 80 and 443): what a connector dials, and what both sides compare.
func URLAddress(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil {
		return "", fmt.Errorf("must be an absolute http(s) URL")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return ParseAddress(net.JoinHostPort(u.Hostname(), port))
}

// loadKey reads a PEM private key for private_key_jwt. Like ssh, it
// refuses a key file that others can read or write: whoever reads it can
// connect as this connector.
func loadKey(path string) (crypto.Signer, error) {
	raw, err := readPrivateFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	var key any
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("%s: unsupported key type %T", path, key)
}

// readPrivateFile reads path after checking (on the opened file, so the
// check is of what is read) that neither group nor others have access.
func readPrivateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("private_key_file %s is accessible by group or others (mode %04o): run chmod 600 %s", path, perm, path)
	}
	return io.ReadAll(io.LimitReader(f, 1<<20))
}
