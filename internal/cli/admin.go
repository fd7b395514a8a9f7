package cli

import (
	"bufio"
	iofs "io/fs"
	"log/slog"

	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/mcpgate/mcpgate/internal/vault"
	"io"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/idp"
	"github.com/mcpgate/mcpgate/internal/keys"
	"github.com/mcpgate/mcpgate/internal/store"
)

// failed reports err and returns the failure exit code.
func failed(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "mcpgate:", err)
	return ExitFailure
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// openStore loads the config and opens its store (migrating it).
func openStore(fs *flag.FlagSet, args []string, stderr io.Writer) (store.Store, *config.Config, int) {
	path := fs.String("config", "mcpgate.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return nil, nil, ExitInvalidConfig
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return nil, nil, reportConfigError(stderr, err)
	}
	st, err := app.OpenStore(context.Background(), cfg.Store)
	if err != nil {
		fmt.Fprintln(stderr, "mcpgate:", err)
		return nil, nil, ExitFailure
	}
	return st, cfg, ExitOK
}

func migrate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	st, _, code := openStore(fs, args, stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	fmt.Fprintln(stdout, "store is up to date")
	return ExitOK
}

func readPassword(stdin io.Reader) (string, error) {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	pw := strings.TrimRight(line, "\r\n")
	if len(pw) < 8 {
		return "", errors.New("the password (read from stdin) must be at least 8 characters")
	}
	return pw, nil
}

func hashPassword(stdin io.Reader, stdout, stderr io.Writer) int {
	pw, err := readPassword(stdin)
	if err != nil {
		fmt.Fprintln(stderr, "mcpgate:", err)
		return ExitInvalidConfig
	}
	h, err := idp.HashPassword(pw)
	if err != nil {
		return failed(stderr, err)
	}
	fmt.Fprintln(stdout, h)
	return ExitOK
}

func userAdd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	username := fs.String("username", "", "login name (also the subject)")
	email := fs.String("email", "", "e-mail address")
	tenant := fs.String("tenant", "", "tenant")
	var groups, roles, perms multi
	fs.Var(&groups, "group", "group (repeatable)")
	fs.Var(&roles, "role", "role (repeatable)")
	fs.Var(&perms, "permission", "permission (repeatable)")
	ad, code := openAdmin(fs, args, stderr)
	if ad == nil {
		return code
	}
	defer ad.close()
	st := ad.users // a user the config declares cannot be replaced here
	if *username == "" || *email == "" {
		fmt.Fprintln(stderr, "mcpgate: --username and --email are required")
		return ExitInvalidConfig
	}
	pw, err := readPassword(stdin)
	if err != nil {
		fmt.Fprintln(stderr, "mcpgate:", err)
		return ExitInvalidConfig
	}
	hash, err := idp.HashPassword(pw)
	if err != nil {
		return failed(stderr, err)
	}
	now := time.Now().UTC()
	u := store.User{ID: *username, Username: *username, Email: *email, PasswordHash: hash, Tenant: *tenant,
		Groups: groups, Roles: roles, Permissions: perms, Source: "cli", CreatedAt: now, UpdatedAt: now}
	ctx := context.Background()
	err = st.CreateUser(ctx, u)
	if errors.Is(err, store.ErrAlreadyExists) {
		err = st.UpdateUser(ctx, u.ID, func(old store.User) (store.User, error) {
			u.CreatedAt = old.CreatedAt
			return u, nil
		})
	}
	if err != nil {
		return failed(stderr, err)
	}
	fmt.Fprintf(stdout, "user %s saved\n", *username)
	return ExitOK
}

func keysRotate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	st, cfg, code := openStore(fs, args, stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	overlap := max(time.Hour, 2*cfg.OAuth.AccessTokenTTL.Std())
	kid, err := keys.Rotate(context.Background(), st, time.Now(), &keys.Options{Overlap: overlap})
	if err != nil {
		return failed(stderr, err)
	}
	fmt.Fprintf(stdout, "new signing key %s; running gateways pick it up within 30s; the previous key stays published for %s\n", kid, overlap)
	return ExitOK
}

func grantRevoke(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("grant revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "user: id (subject), username or e-mail")
	client := fs.String("client", "", "client id (default: every client)")
	ad, code := openAdmin(fs, args, stderr)
	if ad == nil {
		return code
	}
	defer ad.close()
	if *user == "" {
		fmt.Fprintln(stderr, "mcpgate: --user is required")
		return ExitInvalidConfig
	}
	ctx := context.Background()
	u, err := ad.findUser(ctx, *user)
	if err != nil {
		return failed(stderr, err)
	}
	n, err := ad.revokeGrants(ctx, u.ID, *client)
	if err != nil {
		return failed(stderr, err)
	}
	fmt.Fprintf(stdout, "revoked %d refresh token(s) and the remembered consent of %s; their access tokens are refused %s\n", n, u.ID, ad.within())
	return ExitOK
}

// userDisable cuts a user off at once: their refresh tokens are revoked,
// and every replica refuses their tokens and sign-ins. The state is kept
// in the access state, not the user's record, so it holds for users the
// config declares, across restarts.
func userDisable(args []string, enable bool, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("user disable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "user: id (subject), username or e-mail")
	ad, code := openAdmin(fs, args, stderr)
	if ad == nil {
		return code
	}
	defer ad.close()
	if *user == "" {
		fmt.Fprintln(stderr, "mcpgate: --user is required")
		return ExitInvalidConfig
	}
	ctx := context.Background()
	u, err := ad.findUser(ctx, *user)
	if err != nil {
		return failed(stderr, err)
	}
	if enable {
		if err := ad.access.EnableUser(ctx, u.ID); err != nil {
			return failed(stderr, err)
		}
		// A flag an older version set on the record goes too.
		err := ad.base.UpdateUser(ctx, u.ID, func(old store.User) (store.User, error) { old.Disabled = false; return old, nil })
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return failed(stderr, err)
		}
		fmt.Fprintf(stdout, "user %s enabled\n", u.ID)
		return ExitOK
	}
	if err := ad.access.DisableUser(ctx, u.ID); err != nil {
		return failed(stderr, err)
	}
	n, err := ad.base.RevokeRefreshTokens(ctx, u.ID, "", time.Now())
	if err != nil {
		return failed(stderr, err)
	}
	fmt.Fprintf(stdout, "user %s disabled; %d refresh token(s) revoked; running gateways refuse their tokens %s\n", u.ID, n, ad.within())
	return ExitOK
}

// vaultRotate re-encrypts every stored connection with a new vault key.
func vaultRotate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keys rotate-vault", flag.ContinueOnError)
	fs.SetOutput(stderr)
	newFile := fs.String("new-key-file", "", "where the new key goes (created if missing, mode 0600)")
	st, cfg, code := openStore(fs, args, stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	if *newFile == "" {
		fmt.Fprintln(stderr, "mcpgate: --new-key-file is required")
		return ExitInvalidConfig
	}
	ctx := context.Background()
	from, err := app.OpenVault(ctx, cfg.Vault, st, slog.New(slog.DiscardHandler))
	if err != nil {
		return failed(stderr, err)
	}
	key, err := vault.LoadKey(*newFile, "")
	if errors.Is(err, iofs.ErrNotExist) {
		key, err = vault.GenerateKeyFile(*newFile)
	}
	if err != nil {
		return failed(stderr, err)
	}
	to, err := vault.New(key)
	if err != nil {
		return failed(stderr, err)
	}
	n, err := vault.Rotate(ctx, st, from, to)
	if err != nil {
		fmt.Fprintf(stderr, "mcpgate: rotation stopped after %d connection(s): %v (run it again to finish)\n", n, err)
		return ExitFailure
	}
	fmt.Fprintf(stdout, "re-encrypted %d connection(s) with key %s; now set vault.key_file to %s (keep the old file in previous_key_files until every replica restarted)\n", n, key.ID, *newFile)
	return ExitOK
}

// userDelete removes a user with their grants and connections. A user
// the config declares is removed by editing the config.
func userDelete(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("user delete", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "user: id (subject), username or e-mail")
	ad, code := openAdmin(fs, args, stderr)
	if ad == nil {
		return code
	}
	defer ad.close()
	if *user == "" {
		fmt.Fprintln(stderr, "mcpgate: --user is required")
		return ExitInvalidConfig
	}
	ctx := context.Background()
	u, err := ad.findUser(ctx, *user)
	if err != nil {
		return failed(stderr, err)
	}
	if ad.users.Declared(u.ID) {
		return failed(stderr, fmt.Errorf("user %q is declared in the config file: remove it there and restart", u.ID))
	}
	// The same cut-off as a grant revocation (tokens already issued are
	// refused), then the user's own records go.
	tokens, err := ad.revokeGrants(ctx, u.ID, "")
	if err != nil {
		return failed(stderr, err)
	}
	conns, err := ad.base.DeleteUserConnections(ctx, u.ID)
	if err != nil {
		return failed(stderr, err)
	}
	if err := ad.users.DeleteUser(ctx, u.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return failed(stderr, err)
	}
	fmt.Fprintf(stdout, "user %s deleted: %d refresh token(s) revoked, %d connection(s) deleted\n", u.ID, tokens, conns)
	return ExitOK
}

// secretPut stores a tenant-wide secret (a connection of kind api_key) in
// the vault, for upstreams with static credentials. The secret is read
// from stdin (the whole header value, e.g. "Bearer abc…").
func secretPut(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("secret put", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "connection name (kind api_key in the config)")
	tenant := fs.String("tenant", "", "tenant (default: every tenant)")
	st, cfg, code := openStore(fs, args, stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	known := false
	for _, c := range cfg.Connections {
		known = known || (c.Name == *name && c.Kind == "api_key")
	}
	if !known {
		fmt.Fprintf(stderr, "mcpgate: no connection %q of kind api_key in the config\n", *name)
		return ExitInvalidConfig
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return failed(stderr, err)
	}
	value := strings.TrimRight(line, "\r\n")
	if value == "" {
		fmt.Fprintln(stderr, "mcpgate: the secret (read from stdin) is empty")
		return ExitInvalidConfig
	}
	ctx := context.Background()
	v, err := app.OpenVault(ctx, cfg.Vault, st, slog.New(slog.DiscardHandler))
	if err != nil {
		return failed(stderr, err)
	}
	rec := store.Connection{Tenant: *tenant, Name: *name, Kind: store.ConnectionAPIKey}
	if err := v.SealConnection(&rec, []byte(value)); err != nil {
		return failed(stderr, err)
	}
	if err := st.PutConnection(ctx, rec); err != nil {
		return failed(stderr, err)
	}
	fmt.Fprintf(stdout, "secret %s stored for tenant %q (encrypted with vault key %s); gateways use it within 30s\n", *name, *tenant, v.KeyID())
	return ExitOK
}
