// Package server is the MCP server of mcpgate's metrics example (scenario
// S2, per-user data access): two narrow, fixed tools over a PostgreSQL
// database with row-level security.
//
//   - bq.read.customer_metrics {month?} returns the customer metrics rows the
//     caller may see.
//   - bq.write.annotations {customer, month, note} adds an annotation.
//
// Each tool runs one fixed, parameterised statement; the model never writes
// SQL. Two questions, two owners: mcpgate, in front, decides whether the
// caller's role may use the tool at all (a scope per tool); the database
// decides which rows this person may see or write. The server knows the
// person from the token mcpgate minted for it (verified with mcpauth, never
// the client's own token), and runs the statement as that person's own
// database role: its pool logs in as metrics_gateway, which may read
// nothing itself, and every call is a transaction that starts with
// SET LOCAL ROLE <the token's subject>. There is no service account that
// sees everything.
package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/examples/metrics"
	"github.com/mcpgate/mcpgate/internal/fixture"
	"github.com/mcpgate/mcpgate/mcpauth"
)

const (
	// Name and Version are reported in serverInfo.
	Name    = "metrics"
	Version = "1.0.0"

	// ReadTool and WriteTool are the server's two tools.
	ReadTool  = "bq.read.customer_metrics"
	WriteTool = "bq.write.annotations"

	// MaxNoteLen bounds an annotation (in characters).
	MaxNoteLen = 2000
	// maxRoleLen is PostgreSQL's limit on identifiers (NAMEDATALEN-1).
	maxRoleLen = 63
)

// The two statements, fixed. Row-level security adds "and only the rows
// this role may see" to the first (at most 1000 of them), and checks the
// author of the second.
const (
	readSQL = `SELECT customer, month, active_users, revenue::text
FROM customer_metrics
WHERE $1::text IS NULL OR month = $1::text
ORDER BY customer, month
LIMIT 1000`
	writeSQL = `INSERT INTO annotations (customer, month, note) VALUES ($1, $2, $3)
RETURNING id, created_at`
)

var (
	// subjectRE is what a token subject must look like to name a role.
	subjectRE  = regexp.MustCompile(`^[a-z0-9_]+$`)
	monthRE    = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])$`)
	customerRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// Options configures New. The zero value (or nil) is valid.
type Options struct {
	// RolePrefix is put in front of a subject to make its database role
	// (schema.sql's metrics.role_prefix): "" maps alice to the role alice.
	RolePrefix string
	// CallsLog, when set, receives one JSON line (a Call) per tools/call,
	// before the tool runs.
	CallsLog io.Writer
	// Logger receives database errors (the caller only learns that one
	// happened) and the SDK's logs. Nil discards them.
	Logger *slog.Logger
	// QueryTimeout bounds each tool's transaction. Default 10s.
	QueryTimeout time.Duration
}

// Server is the metrics MCP server over a pool whose connections log in as
// the gateway role (schema.sql's metrics_gateway).
type Server struct {
	pool    *pgxpool.Pool
	prefix  string
	login   string // the role the pool logs in as: never one to switch to
	timeout time.Duration
	log     *slog.Logger
	calls   *callsLog
	mcp     *mcp.Server
}

// New returns the server. It asks the database which role the pool logs in
// as, so that a token whose subject names that very role is refused.
func New(ctx context.Context, pool *pgxpool.Pool, opts *Options) (*Server, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 10 * time.Second
	}
	if !metrics.ValidPrefix(o.RolePrefix) {
		return nil, fmt.Errorf("role prefix %q: only a-z, 0-9 and _ (at most 32)", o.RolePrefix)
	}
	s := &Server{pool: pool, prefix: o.RolePrefix, timeout: o.QueryTimeout, log: o.Logger}
	if err := pool.QueryRow(ctx, "SELECT session_user").Scan(&s.login); err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if o.CallsLog != nil {
		s.calls = &callsLog{w: o.CallsLog}
	}
	s.mcp = s.newMCP()
	return s, nil
}

// MCP returns the MCP server (e.g. to close its sessions at shutdown).
func (s *Server) MCP() *mcp.Server { return s.mcp }

// Handler serves the MCP server over Streamable HTTP (every protocol
// version: sessions up to 2025-11-25, stateless after), behind v: a
// request without a valid token minted for this server gets 401.
func (s *Server) Handler(v *mcpauth.Verifier) http.Handler {
	return v.Middleware(fixture.NewStreamableHandler(s.mcp, s.log))
}

func (s *Server) newMCP() *mcp.Server {
	srv := mcp.NewServer(&mcp.Implementation{Name: Name, Title: "Customer metrics (mcpgate example)", Version: Version},
		&mcp.ServerOptions{
			Instructions: "Customer metrics by month (YYYY-MM). You see the customers your database role may see; " +
				"annotations record a note about a customer's month.",
			Logger: s.log,
		})
	if s.calls != nil {
		srv.AddReceivingMiddleware(s.calls.middleware())
	}
	mcp.AddTool(srv, &mcp.Tool{
		Name:  ReadTool,
		Title: "Customer metrics",
		Description: "Returns monthly metrics (active users, revenue) of the customers you may see, " +
			"optionally for one month (YYYY-MM). Each row names its customer.",
		InputSchema: inputSchema[ReadArgs](),
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: new(false)},
	}, s.read)
	mcp.AddTool(srv, &mcp.Tool{
		Name:        WriteTool,
		Title:       "Annotate a customer's month",
		Description: "Records a note about a customer's metrics for a month (YYYY-MM), signed by you.",
		InputSchema: inputSchema[AnnotateArgs](),
		Annotations: &mcp.ToolAnnotations{DestructiveHint: new(false), OpenWorldHint: new(false)},
	}, s.annotate)
	return srv
}

// inputSchema is the schema inferred from T, with the month and customer
// patterns.
func inputSchema[T any]() *jsonschema.Schema {
	sch, err := jsonschema.For[T](nil)
	if err != nil {
		panic(err)
	}
	if p := sch.Properties["month"]; p != nil {
		p.Pattern = monthRE.String()
	}
	if p := sch.Properties["customer"]; p != nil {
		p.Pattern = customerRE.String()
	}
	if p := sch.Properties["note"]; p != nil {
		p.MinLength, p.MaxLength = new(1), new(MaxNoteLen)
	}
	return sch
}

// ReadArgs is the input of bq.read.customer_metrics.
type ReadArgs struct {
	Month string `json:"month,omitempty" jsonschema:"only this month, YYYY-MM (e.g. 2026-11); all months when left out"`
}

// Row is one customer's metrics for one month.
type Row struct {
	Customer    string `json:"customer"`
	Month       string `json:"month"`
	ActiveUsers int    `json:"active_users"`
	Revenue     string `json:"revenue" jsonschema:"a decimal number, e.g. 48000.00"`
}

// ReadResult is the output of bq.read.customer_metrics.
type ReadResult struct {
	User string `json:"user" jsonschema:"whom the query ran as"`
	Rows []Row  `json:"rows"`
}

// AnnotateArgs is the input of bq.write.annotations.
type AnnotateArgs struct {
	Customer string `json:"customer" jsonschema:"the customer, e.g. acme"`
	Month    string `json:"month" jsonschema:"the month, YYYY-MM"`
	Note     string `json:"note" jsonschema:"the note"`
}

// Annotation is the output of bq.write.annotations.
type Annotation struct {
	ID        int64  `json:"id"`
	Customer  string `json:"customer"`
	Month     string `json:"month"`
	Note      string `json:"note"`
	Author    string `json:"author"`
	CreatedAt string `json:"created_at"`
}

func (s *Server) read(ctx context.Context, req *mcp.CallToolRequest, in ReadArgs) (*mcp.CallToolResult, ReadResult, error) {
	id, ok := mcpauth.FromRequest(req)
	if !ok {
		return nil, ReadResult{}, errors.New("unauthenticated")
	}
	var month *string
	if in.Month != "" {
		if !monthRE.MatchString(in.Month) {
			return nil, ReadResult{}, fmt.Errorf("month %q is not YYYY-MM (e.g. 2026-11)", in.Month)
		}
		month = &in.Month
	}
	out := ReadResult{User: id.Subject, Rows: []Row{}}
	err := s.asUser(ctx, id.Subject, pgx.ReadOnly, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, readSQL, month)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r Row
			if err := rows.Scan(&r.Customer, &r.Month, &r.ActiveUsers, &r.Revenue); err != nil {
				return err
			}
			out.Rows = append(out.Rows, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, ReadResult{}, err
	}
	return nil, out, nil
}

func (s *Server) annotate(ctx context.Context, req *mcp.CallToolRequest, in AnnotateArgs) (*mcp.CallToolResult, Annotation, error) {
	id, ok := mcpauth.FromRequest(req)
	if !ok {
		return nil, Annotation{}, errors.New("unauthenticated")
	}
	note := strings.TrimSpace(in.Note)
	switch {
	case !customerRE.MatchString(in.Customer):
		return nil, Annotation{}, fmt.Errorf("customer %q is not a customer name (e.g. acme)", in.Customer)
	case !monthRE.MatchString(in.Month):
		return nil, Annotation{}, fmt.Errorf("month %q is not YYYY-MM (e.g. 2026-11)", in.Month)
	case note == "":
		return nil, Annotation{}, errors.New("note must not be empty")
	case !utf8.ValidString(note) || strings.ContainsRune(note, 0):
		return nil, Annotation{}, errors.New("note is not valid text")
	case utf8.RuneCountInString(note) > MaxNoteLen:
		return nil, Annotation{}, fmt.Errorf("note is longer than %d characters", MaxNoteLen)
	}
	out := Annotation{Customer: in.Customer, Month: in.Month, Note: note, Author: id.Subject}
	err := s.asUser(ctx, id.Subject, pgx.ReadWrite, func(tx pgx.Tx) error {
		var created time.Time
		if err := tx.QueryRow(ctx, writeSQL, in.Customer, in.Month, note).Scan(&out.ID, &created); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "23503" { // foreign_key_violation
				return userError{fmt.Errorf("unknown customer %q", in.Customer)}
			}
			return err
		}
		out.CreatedAt = created.UTC().Format(time.RFC3339)
		return nil
	})
	if err != nil {
		return nil, Annotation{}, err
	}
	return nil, out, nil
}

// userError is an error whose message the caller may see as it is.
type userError struct{ error }

// noAccess is the answer for a subject without a database role.
func noAccess(subject string) error {
	if subjectRE.MatchString(subject) {
		return userError{fmt.Errorf("no database access for %s", subject)}
	}
	return userError{fmt.Errorf("no database access for %q", subject)}
}

// roleFor maps a token subject to its database role: the prefix and the
// subject, which must be plain lower-case letters, digits and _ (so that
// "alice" is the role alice, and nothing else becomes a role name), and
// must not name the role the server logs in as.
func (s *Server) roleFor(subject string) (string, bool) {
	role := s.prefix + subject
	if !subjectRE.MatchString(subject) || len(role) > maxRoleLen || role == s.login || strings.HasPrefix(role, "pg_") {
		return "", false
	}
	return role, true
}

// asUser runs fn in a transaction as subject's own database role. The
// role's grants and the tables' row-level security policies then decide
// what fn's statement may see and do. SET LOCAL ends with the transaction,
// so the pooled connection goes back as the gateway role.
func (s *Server) asUser(ctx context.Context, subject string, mode pgx.TxAccessMode, fn func(pgx.Tx) error) error {
	role, ok := s.roleFor(subject)
	if !ok {
		return noAccess(subject)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: mode})
	if err != nil {
		s.log.Error("database unavailable", "err", err)
		return errors.New("the database is unavailable; try again later")
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
		var pe *pgconn.PgError
		// 22023: no such role (SET ROLE is a setting; the value is
		// invalid); 42501: the gateway is not a member of it.
		if errors.As(err, &pe) && (pe.Code == "22023" || pe.Code == "42704" || pe.Code == "42501") {
			return noAccess(subject)
		}
		return s.internal(subject, err)
	}
	if err := fn(tx); err != nil {
		var ue userError
		if errors.As(err, &ue) {
			return ue
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" { // insufficient_privilege, RLS WITH CHECK
			return userError{fmt.Errorf("the database refused %s: %s", subject, pe.Message)}
		}
		return s.internal(subject, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.internal(subject, err)
	}
	return nil
}

func (s *Server) internal(subject string, err error) error {
	s.log.Error("database error", "user", subject, "err", err)
	return errors.New("database error (logged by the metrics server)")
}

// Call is one line of the calls log: which tool, for whom (the token's
// subject), through which agent, and a SHA-256 of the bearer token the
// call came with (so a test can tell a minted token from the client's).
type Call struct {
	Time        time.Time       `json:"time"`
	Tool        string          `json:"tool"`
	User        string          `json:"user"`
	Agent       string          `json:"agent,omitempty"`
	TokenSHA256 string          `json:"token_sha256,omitempty"`
	Arguments   json.RawMessage `json:"arguments"`
}

type callsLog struct {
	mu sync.Mutex
	w  io.Writer
}

// middleware logs every tools/call before it is handled; a call that cannot
// be logged fails, so the log never misses one the server served.
func (l *callsLog) middleware() mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if r, ok := req.(*mcp.CallToolRequest); ok && method == "tools/call" && r.Params != nil {
				c := Call{Time: time.Now().UTC(), Tool: r.Params.Name, Arguments: r.Params.Arguments}
				if id, ok := mcpauth.FromRequest(r); ok {
					c.User, c.Agent = id.Subject, id.Actor
					if c.Agent == "" {
						c.Agent = id.ClientID
					}
				}
				if r.Extra != nil && r.Extra.Header != nil {
					if f := strings.Fields(r.Extra.Header.Get("Authorization")); len(f) == 2 {
						c.TokenSHA256 = TokenHash(f[1])
					}
				}
				if err := l.write(c); err != nil {
					return nil, fmt.Errorf("calls log: %w", err)
				}
			}
			return next(ctx, method, req)
		}
	}
}

func (l *callsLog) write(c Call) error {
	if len(c.Arguments) == 0 || string(c.Arguments) == "null" {
		c.Arguments = json.RawMessage("{}")
	}
	line, err := json.Marshal(c)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err = l.w.Write(append(line, '\n'))
	return err
}

// TokenHash is the hex SHA-256 of a bearer token, as the calls log has it.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
