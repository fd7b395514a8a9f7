package connector

import (
	"io"
	"time"

	"github.com/hashicorp/yamux"
)

// Limits of the multiplexer, the same on both sides.
const (
	// StreamWindow bounds what one stream may have in flight unread: a
	// slow reader holds back its own stream only (yamux flow control).
	StreamWindow = 256 << 10
	// AcceptBacklog bounds streams opened but not yet accepted by the
	// connector (the gateway opens them).
	AcceptBacklog = 256
	// HubAcceptBacklog is the gateway's: a connector opens only its
	// control stream; yamux resets any stream past the backlog, so a
	// connector cannot park streams (each buffering a window) there.
	HubAcceptBacklog = 1
	// KeepAlive is how often each side pings the other; a session whose
	// writes stall for WriteTimeout is closed.
	KeepAlive    = 15 * time.Second
	WriteTimeout = 20 * time.Second
	// OpenTimeout bounds how long opening a stream, and its open/result
	// exchange, may take.
	OpenTimeout = 10 * time.Second
	// MaxStreams bounds the streams one session carries at once; past it
	// the gateway opens none and the connector refuses more.
	MaxStreams = 1024
)

// muxConfig is the yamux configuration of both sides; keepalive may be
// shortened by tests.
func muxConfig(keepAlive time.Duration) *yamux.Config {
	c := yamux.DefaultConfig()
	c.AcceptBacklog = AcceptBacklog
	c.EnableKeepAlive = true
	c.KeepAliveInterval = keepAlive
	c.ConnectionWriteTimeout = WriteTimeout
	c.MaxStreamWindowSize = StreamWindow
	c.StreamOpenTimeout = OpenTimeout
	c.StreamCloseTimeout = 30 * time.Second
	c.LogOutput = io.Discard
	return c
}

// hubMuxConfig is the gateway side's configuration: muxConfig with the
// accept backlog at HubAcceptBacklog.
func hubMuxConfig(keepAlive time.Duration) *yamux.Config {
	c := muxConfig(keepAlive)
	c.AcceptBacklog = HubAcceptBacklog
	return c
}
