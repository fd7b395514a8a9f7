// Package connector is mcpgate's outbound-only tunnel (issue 10): a
// connector inside a private network dials out to the gateway over one
// WebSocket, and the gateway reaches the private upstreams through streams
// multiplexed on it. The connector accepts no inbound connection at all.
//
// Both sides share this wire format:
//
//   - the WebSocket (subprotocol ProtocolV1) carries a yamux session
//     (per-stream flow control with bounded windows, keepalive pings), so
//     one slow stream never stalls the others;
//   - the connector opens the first stream, the control stream, and sends
//     a hello frame (its name, version and the upstreams it serves); the
//     gateway answers with a welcome frame or an error and closes. Later
//     the connector sends reauth frames on it with fresh access tokens;
//   - for each upstream connection the gateway opens a stream and sends an
//     open frame naming the upstream and its address (host:port, from the
//     gateway's config); the connector answers with a result frame and,
//     when it accepted, the stream becomes a byte pipe to that address.
//
// A frame is a 4-byte big-endian length and that many bytes of JSON,
// at most MaxFrame bytes. Frames are only ever read by ReadFrame and
// decoded by ParseFrame (frame.go), the one strict reading of
// attacker-controlled input on either side (FuzzFrames).
//
// Files: frame.go (the wire format), mux.go (yamux limits), hub.go (the
// gateway's side: Hub), agent*.go (the connector: Agent, its config, its
// stdio processes), keygen.go. What lives next door: internal/upstream's
// ConnectorTransport and StreamLink put the hub under the gateway's
// engines; internal/app wires the hub across configuration generations;
// internal/config and internal/catalog compile `connectors:`.
package connector
