package config

import (
	"net"
	"strconv"
)

// Metrics configures the Prometheus endpoint (/metrics, /healthz). It is
// served on a listener of its own, never on `listen`: a gateway reachable
// from the internet must not publish which servers, tools and connectors
// it has, nor its traffic, to whoever asks. Empty Listen: no endpoint.
type Metrics struct {
	// Listen is the metrics listener's host:port, e.g. "127.0.0.1:9464".
	Listen string `yaml:"listen"`
}

// metrics checks `metrics:`.
func (v *validator) metrics() {
	m := v.c.Metrics
	if m.Listen == "" {
		if v.written("metrics.listen") {
			v.add("metrics.listen", `must be host:port, e.g. "127.0.0.1:9464"; leave metrics out to serve none`)
		}
		return
	}
	if msg := checkListen(m.Listen); msg != "" {
		v.add("metrics.listen", "%s", msg)
		return
	}
	if sameListener(m.Listen, defaultString(v.c.Listen, DefaultListen)) {
		v.add("metrics.listen", "must differ from listen (%s): metrics are served on a listener of their own, never on the public one", defaultString(v.c.Listen, DefaultListen))
	}
}

// sameListener reports whether two valid listen addresses would take the
// same port: equal non-zero ports on the same host, or on all interfaces
// (an empty or unspecified host) for either.
func sameListener(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	na, _ := strconv.Atoi(pa)
	nb, _ := strconv.Atoi(pb)
	if na == 0 || na != nb {
		return false
	}
	return ha == hb || anyHost(ha) || anyHost(hb)
}

func anyHost(h string) bool {
	ip := net.ParseIP(h)
	return h == "" || ip != nil && ip.IsUnspecified()
}
