package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Bounds on a run's parameters.
const (
	maxDuration = 10 * time.Minute // longest measured phase
	maxWarmup   = time.Minute
	maxSessions = 10000
)

// runConfig is the validated configuration of "mcpload run".
type runConfig struct {
	URL      string
	Sessions int
	Duration time.Duration // 0: bounded by Requests only (and maxDuration)
	Requests int64         // 0: bounded by Duration only
	Tool     string
	Args     json.RawMessage // a JSON object
	Bearer   string
	Warmup   time.Duration
	Timeout  time.Duration // per call and per connect
	Protocol string        // MCP protocol version to request; "" = SDK latest
	Era      string        // "" (any), era20251125 or era20260728: the protocol era every session must get
	SSE      bool          // open the standalone GET SSE stream per session
}

// The two protocol eras a run can pin (-era). The session era (MCP
// 2025-11-25) opens a session with initialize and sends every call with
// its Mcp-Session-Id; the stateless era (MCP 2026-07-28, SEP-2575) opens
// none: the client learns the server with server/discover and sends every
// call self-contained, with the protocol version and client capabilities
// in params._meta and the Mcp-Method/Mcp-Name headers (SEP-2243). The
// go-sdk client speaks both; pinning the era makes a run fail rather than
// measure the other era when the target falls back.
const (
	era20251125 = "2025-11-25"
	era20260728 = "2026-07-28"
)

// parseRunArgs parses and validates the flags of "mcpload run". Errors are
// *usageError, or flag.ErrHelp for -h.
func parseRunArgs(args []string, stderr io.Writer) (runConfig, error) {
	var cfg runConfig
	var argsJSON string
	fs := flag.NewFlagSet("mcpload run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", "", "MCP Streamable HTTP endpoint (loopback only), e.g. http://127.0.0.1:8080/mcp")
	fs.IntVar(&cfg.Sessions, "sessions", 32, "concurrent MCP sessions, each a closed loop of calls")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured duration after warmup (0: bounded by -requests only; at most 10m)")
	fs.Int64Var(&cfg.Requests, "requests", 0, "stop after this many measured calls in total (0: bounded by -duration only)")
	fs.StringVar(&cfg.Tool, "tool", "echo", "tool to call")
	fs.StringVar(&argsJSON, "args", `{"text":"hi"}`, "tool arguments, a JSON object")
	fs.StringVar(&cfg.Bearer, "bearer", "", "send 'Authorization: Bearer TOKEN' on every HTTP request")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured load before the measured phase (at most 1m)")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "timeout of each call and of each session's connect")
	fs.StringVar(&cfg.Protocol, "protocol", "", "MCP protocol version to request, e.g. 2025-11-25 (default: the SDK's latest, with fallback)")
	fs.StringVar(&cfg.Era, "era", "", "pin the protocol era: 2025-11-25 (sessions: initialize, Mcp-Session-Id) or 2026-07-28 (stateless: _meta and Mcp-Method/Mcp-Name on every call, no session); the run fails if the target serves the other")
	fs.BoolVar(&cfg.SSE, "sse", false, "also open each session's standalone GET SSE stream")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return cfg, usagef("unexpected arguments: %q", fs.Args())
	}
	cfg.Args = json.RawMessage(argsJSON)
	return cfg, cfg.validate()
}

// validate checks the bounds of a run; all errors are *usageError.
func (c runConfig) validate() error {
	if _, err := parseLoopbackURL("url", c.URL); err != nil {
		return err
	}
	switch {
	case c.Sessions < 1 || c.Sessions > maxSessions:
		return usagef("-sessions must be between 1 and %d", maxSessions)
	case c.Duration < 0:
		return usagef("-duration must not be negative")
	case c.Duration > maxDuration:
		return usagef("-duration %v exceeds the cap of %v", c.Duration, maxDuration)
	case c.Requests < 0:
		return usagef("-requests must not be negative")
	case c.Duration == 0 && c.Requests == 0:
		return usagef("the run is unbounded: set -duration and/or -requests")
	case c.Warmup < 0 || c.Warmup > maxWarmup:
		return usagef("-warmup must be between 0 and %v", maxWarmup)
	case c.Timeout <= 0:
		return usagef("-timeout must be positive")
	case c.Tool == "":
		return usagef("-tool must not be empty")
	case c.Era != "" && c.Era != era20251125 && c.Era != era20260728:
		return usagef("-era must be %s or %s, got %q", era20251125, era20260728, c.Era)
	case c.Era != "" && c.Protocol != "":
		return usagef("-era and -protocol exclude each other (-era %s requests that version)", c.Era)
	case c.Era == era20260728 && c.SSE:
		return usagef("-sse needs a session: the 2026-07-28 era has none")
	}
	var obj map[string]any
	if err := json.Unmarshal(c.Args, &obj); err != nil || obj == nil {
		return usagef("-args must be a JSON object, got %q", string(c.Args))
	}
	return nil
}

// runResult is what a run measured. Only calls started in the measured phase
// count; latencies are of successful calls.
type runResult struct {
	URL         string
	Protocol    string // the protocol version the sessions negotiated
	Sessions    int
	Elapsed     time.Duration // measured phase: its start until the last call returned
	Requests    uint64        // measured calls that completed (ok + errors)
	ToolErrors  uint64        // results with isError set
	CallErrors  uint64        // protocol (JSON-RPC) and transport errors
	Hist        *histogram    // latency of successful calls
	FirstError  string
	Interrupted bool
	ConnectTime time.Duration
	Reconnects  uint64
	WarmupCalls uint64
}

func (r *runResult) Errors() uint64 { return r.ToolErrors + r.CallErrors }

// RPS is successful calls per second of the measured phase.
func (r *runResult) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests-r.Errors()) / r.Elapsed.Seconds()
}

// summary is the machine-readable last line of "mcpload run".
type summary struct {
	URL             string  `json:"url"`
	Protocol        string  `json:"protocol"`
	Sessions        int     `json:"sessions"`
	DurationS       float64 `json:"duration_s"`
	Requests        uint64  `json:"requests"`
	Errors          uint64  `json:"errors"`
	RPS             float64 `json:"rps"`
	P50ms           float64 `json:"p50_ms"`
	P90ms           float64 `json:"p90_ms"`
	P99ms           float64 `json:"p99_ms"`
	MaxMs           float64 `json:"max_ms"`
	ToolErrors      uint64  `json:"tool_errors"`
	TransportErrors uint64  `json:"transport_errors"`
}

func round(v float64, places int) float64 {
	p := math.Pow10(places)
	return math.Round(v*p) / p
}

func ms(d time.Duration) float64 { return round(float64(d)/1e6, 3) }

func (r *runResult) summary() summary {
	return summary{
		URL:             r.URL,
		Protocol:        r.Protocol,
		Sessions:        r.Sessions,
		DurationS:       round(r.Elapsed.Seconds(), 3),
		Requests:        r.Requests,
		Errors:          r.Errors(),
		RPS:             round(r.RPS(), 1),
		P50ms:           ms(r.Hist.Quantile(0.50)),
		P90ms:           ms(r.Hist.Quantile(0.90)),
		P99ms:           ms(r.Hist.Quantile(0.99)),
		MaxMs:           ms(r.Hist.Max()),
		ToolErrors:      r.ToolErrors,
		TransportErrors: r.CallErrors,
	}
}

// writeReport prints the human-readable report followed by the JSON line.
func (r *runResult) writeReport(w io.Writer) error {
	s := r.summary()
	fmt.Fprintf(w, "target:     %s (%d sessions, protocol %s)\n", r.URL, r.Sessions, r.Protocol)
	fmt.Fprintf(w, "setup:      connected in %v, %d warmup calls, %d reconnects\n", r.ConnectTime.Round(time.Millisecond), r.WarmupCalls, r.Reconnects)
	fmt.Fprintf(w, "duration:   %.3fs measured\n", r.Elapsed.Seconds())
	fmt.Fprintf(w, "requests:   %d\n", r.Requests)
	fmt.Fprintf(w, "errors:     %d (tool isError: %d, protocol/transport: %d)\n", r.Errors(), r.ToolErrors, r.CallErrors)
	fmt.Fprintf(w, "throughput: %.1f req/s\n", s.RPS)
	fmt.Fprintf(w, "latency:    p50 %.3fms  p90 %.3fms  p99 %.3fms  max %.3fms\n", s.P50ms, s.P90ms, s.P99ms, s.MaxMs)
	line, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", line)
	return err
}

// runCommand implements "mcpload run".
func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseRunArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "mcpload run: %v\n", err)
		return exitUsage
	}
	res, err := runLoad(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mcpload run: %v\n", err)
		return exitFail
	}
	if err := res.writeReport(stdout); err != nil {
		fmt.Fprintf(stderr, "mcpload run: %v\n", err)
		return exitFail
	}
	if res.FirstError != "" {
		fmt.Fprintf(stderr, "mcpload run: first error: %s\n", res.FirstError)
	}
	switch {
	case res.Interrupted:
		fmt.Fprintln(stderr, "mcpload run: interrupted; results are partial")
		return exitFail
	case res.Requests > 0 && res.Requests == res.Errors():
		fmt.Fprintln(stderr, "mcpload run: every call failed")
		return exitFail
	case res.Requests == 0:
		fmt.Fprintln(stderr, "mcpload run: no call completed in the measured phase")
		return exitFail
	}
	return exitOK
}

// bearerTransport adds a bearer token to every request.
type bearerTransport struct {
	token string
	base  http.RoundTripper
}

func (t *bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context()) // a RoundTripper must not modify its request
	r.Header.Set("Authorization", "Bearer "+t.token)
	return t.base.RoundTrip(r)
}

// newHTTPClient returns the client shared by all sessions: loopback-only
// dialing, no proxy from the environment, and an idle pool large enough that
// concurrent sessions reuse connections instead of churning them.
func newHTTPClient(cfg runConfig) *http.Client {
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second, Control: loopbackOnlyControl}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConnsPerHost:   2*cfg.Sessions + 8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	var rt http.RoundTripper = tr
	if cfg.Bearer != "" {
		rt = &bearerTransport{token: cfg.Bearer, base: tr}
	}
	return &http.Client{Transport: rt}
}

// loadRun holds the shared state of one run.
type loadRun struct {
	cfg       runConfig
	client    *mcp.Client
	transport func() mcp.Transport
	measStart time.Time
	end       time.Time // zero: no duration bound
	hardStop  time.Time

	issued      atomic.Int64 // measured calls claimed against -requests
	requests    atomic.Uint64
	toolErrors  atomic.Uint64
	callErrors  atomic.Uint64
	reconnects  atomic.Uint64
	warmupCalls atomic.Uint64
	hist        *histogram
	firstErr    sync.Once
	firstErrMsg string
}

func (l *loadRun) noteError(msg string) {
	l.firstErr.Do(func() { l.firstErrMsg = msg })
}

func (l *loadRun) connect(ctx context.Context) (*mcp.ClientSession, error) {
	cctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	var opts *mcp.ClientSessionOptions
	if v := cmp.Or(l.cfg.Era, l.cfg.Protocol); v != "" {
		opts = &mcp.ClientSessionOptions{ProtocolVersion: v}
	}
	cs, err := l.client.Connect(cctx, l.transport(), opts)
	if err != nil {
		return nil, err
	}
	if err := checkEra(l.cfg.Era, cs); err != nil {
		_ = cs.Close()
		return nil, err
	}
	return cs, nil
}

// checkEra fails a session that did not get the era the run pins: the
// protocol version, and a session id in the session era and none in the
// stateless one.
func checkEra(era string, cs *mcp.ClientSession) error {
	if era == "" {
		return nil
	}
	got := ""
	if ir := cs.InitializeResult(); ir != nil {
		got = ir.ProtocolVersion
	}
	switch {
	case got != era:
		return fmt.Errorf("-era %s: the target negotiated protocol %q", era, got)
	case era == era20251125 && cs.ID() == "":
		return fmt.Errorf("-era %s: the target opened no session", era)
	case era == era20260728 && cs.ID() != "":
		return fmt.Errorf("-era %s: the target opened session %q, want none", era, cs.ID())
	}
	return nil
}

// protocolOf is the protocol version a session negotiated.
func protocolOf(cs *mcp.ClientSession) string {
	if cs == nil || cs.InitializeResult() == nil {
		return ""
	}
	return cs.InitializeResult().ProtocolVersion
}

// runLoad connects cfg.Sessions sessions, drives them in closed loops and
// returns the measurements. It fails only if the sessions cannot be set up.
func runLoad(ctx context.Context, cfg runConfig, logw io.Writer) (*runResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	httpClient := newHTTPClient(cfg)
	defer httpClient.CloseIdleConnections()
	l := &loadRun{
		cfg:    cfg,
		client: mcp.NewClient(&mcp.Implementation{Name: "mcpload", Version: "0.1.0"}, nil),
		transport: func() mcp.Transport {
			return &mcp.StreamableClientTransport{
				Endpoint:             cfg.URL,
				HTTPClient:           httpClient,
				MaxRetries:           -1,
				DisableStandaloneSSE: !cfg.SSE,
			}
		},
		hist: newHistogram(),
	}

	connectStart := time.Now()
	sessions, err := l.connectAll(ctx)
	if err != nil {
		return nil, err
	}
	connectTime := time.Since(connectStart)
	protocol := protocolOf(sessions[0])
	fmt.Fprintf(logw, "mcpload: %d sessions connected to %s in %v (protocol %s)\n", len(sessions), cfg.URL, connectTime.Round(time.Millisecond), protocol)

	start := time.Now()
	l.measStart = start.Add(cfg.Warmup)
	l.hardStop = l.measStart.Add(maxDuration)
	if cfg.Duration > 0 {
		l.end = l.measStart.Add(cfg.Duration)
	}
	runCtx, cancel := context.WithDeadline(ctx, l.hardStop.Add(cfg.Timeout))
	defer cancel()

	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() { sessions[i] = l.worker(runCtx, sessions[i]) })
	}
	wg.Wait()
	finished := time.Now()
	closeSessions(sessions, 5*time.Second)

	elapsed := finished.Sub(l.measStart)
	if elapsed < 0 {
		elapsed = 0
	}
	return &runResult{
		URL:         cfg.URL,
		Protocol:    protocol,
		Sessions:    cfg.Sessions,
		Elapsed:     elapsed,
		Requests:    l.requests.Load(),
		ToolErrors:  l.toolErrors.Load(),
		CallErrors:  l.callErrors.Load(),
		Hist:        l.hist,
		FirstError:  l.firstErrMsg,
		Interrupted: ctx.Err() != nil,
		ConnectTime: connectTime,
		Reconnects:  l.reconnects.Load(),
		WarmupCalls: l.warmupCalls.Load(),
	}, nil
}

// connectAll opens every session concurrently; if any fails, it closes the
// others and reports the first failure.
func (l *loadRun) connectAll(ctx context.Context) ([]*mcp.ClientSession, error) {
	sessions := make([]*mcp.ClientSession, l.cfg.Sessions)
	errs := make([]error, l.cfg.Sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() { sessions[i], errs[i] = l.connect(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			closeSessions(sessions, 5*time.Second)
			return nil, fmt.Errorf("connecting session %d of %d to %s: %w", i+1, len(errs), l.cfg.URL, err)
		}
	}
	return sessions, nil
}

// worker drives one session in a closed loop until a bound is reached. It
// returns the session it ended with (it may have reconnected), or nil.
func (l *loadRun) worker(ctx context.Context, cs *mcp.ClientSession) *mcp.ClientSession {
	// The SDK sends a call's HTTP request with the call's context and
	// drains the rest of the response stream in the background after
	// CallTool has returned. Cancelling that context at once would often
	// abort the drain and so close the HTTP connection, making every call
	// pay for a new connection (and, through a proxy, abort the upstream
	// stream too). So a successful call's context is cancelled only once the
	// next call has returned; the last one is cancelled with ctx, after
	// runLoad has closed the sessions.
	var cancelPrev context.CancelFunc
	for cs != nil && ctx.Err() == nil {
		now := time.Now()
		measured := !now.Before(l.measStart)
		if measured {
			if (!l.end.IsZero() && !now.Before(l.end)) || !now.Before(l.hardStop) {
				return cs
			}
			if l.cfg.Requests > 0 && l.issued.Add(1) > l.cfg.Requests {
				return cs
			}
		}
		callCtx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
		t0 := time.Now()
		// CallTool adds _meta to its params, so each call gets its own.
		res, err := cs.CallTool(callCtx, &mcp.CallToolParams{Name: l.cfg.Tool, Arguments: l.cfg.Args})
		lat := time.Since(t0)
		if cancelPrev != nil {
			cancelPrev()
		}
		cancelPrev = cancel
		if err != nil {
			cancel() // nothing left to drain
		}
		if err != nil && ctx.Err() != nil {
			return cs // interrupted or hard deadline: the call does not count
		}
		if !measured {
			l.warmupCalls.Add(1)
		} else {
			l.requests.Add(1)
			switch {
			case err != nil:
				l.callErrors.Add(1)
				l.noteError(err.Error())
			case res.IsError:
				l.toolErrors.Add(1)
				l.noteError("tool " + l.cfg.Tool + " returned isError: " + resultText(res))
			default:
				l.hist.Record(lat)
			}
		}
		if err != nil && (errors.Is(err, mcp.ErrConnectionClosed) || errors.Is(err, mcp.ErrSessionMissing)) {
			// The session is gone: replace it rather than spin on errors.
			_ = cs.Close()
			next, cerr := l.connect(ctx)
			if cerr != nil {
				if ctx.Err() == nil {
					l.noteError("reconnect: " + cerr.Error())
				}
				return nil
			}
			l.reconnects.Add(1)
			cs = next
		}
	}
	return cs
}

// resultText is the text content of a result, for error messages.
func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, t.Text)
		}
	}
	s := strings.Join(parts, " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// closeSessions closes all non-nil sessions concurrently, waiting at most
// limit for them.
func closeSessions(sessions []*mcp.ClientSession, limit time.Duration) {
	var wg sync.WaitGroup
	for _, cs := range sessions {
		if cs != nil {
			wg.Go(func() { _ = cs.Close() })
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
	}
}
