package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
)

// isLoopbackHost reports whether host (a URL hostname or listen host, without
// port or brackets) names this machine: "localhost", an address in
// 127.0.0.0/8 or ::1 (IPv4-mapped forms included).
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseLoopbackURL parses an http(s) URL and refuses any whose host is not
// loopback. name is the flag name, for error messages.
func parseLoopbackURL(name, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, usagef("-%s is required", name)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, usagef("-%s: %v", name, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, usagef("-%s %q: scheme must be http or https", name, raw)
	}
	if u.Host == "" {
		return nil, usagef("-%s %q: missing host", name, raw)
	}
	if u.User != nil {
		return nil, usagef("-%s %q: user info is not supported (use -bearer)", name, raw)
	}
	if !isLoopbackHost(u.Hostname()) {
		return nil, usagef("-%s %q: host %q is not loopback; mcpload only sends load to this machine (127.0.0.0/8, ::1, localhost)", name, raw, u.Hostname())
	}
	return u, nil
}

// checkLoopbackListen refuses a listen address whose host is not loopback.
// An empty host (":8080") means all interfaces and is refused too.
func checkLoopbackListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("-listen %q: %v", addr, err)
	}
	if !isLoopbackHost(host) {
		return usagef("-listen %q: host must be loopback (127.0.0.0/8, ::1, localhost)", addr)
	}
	return nil
}

// loopbackOnlyControl is a net.Dialer Control function that refuses to
// connect to anything but a loopback address. It runs after name
// resolution, so it also covers "localhost" resolving somewhere unexpected
// and redirects to other hosts.
func loopbackOnlyControl(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("mcpload: refusing to connect to non-loopback address %s", address)
	}
	return nil
}
