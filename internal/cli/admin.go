package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/internal/app"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/idp"
	"github.com/mcpgate/mcpgate/internal/keys"
	"github.com/mcpgate/mcpgate/internal/store"
)

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
		fmt.Fprintln(stderr, "mcpgate:", err)
		return ExitFailure
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
	st, _, code := openStore(fs, args, stderr)
	if st == nil {
		return code
	}
	defer st.Close()
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
		fmt.Fprintln(stderr, "mcpgate:", err)
		return ExitFailure
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
		fmt.Fprintln(stderr, "mcpgate:", err)
		return ExitFailure
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
		fmt.Fprintln(stderr, "mcpgate:", err)
		return ExitFailure
	}
	fmt.Fprintf(stdout, "new signing key %s; running gateways pick it up within 30s; the previous key stays published for %s\n", kid, overlap)
	return ExitOK
}

func grantRevoke(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("grant revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "user id (subject)")
	client := fs.String("client", "", "client id (default: every client)")
	st, _, code := openStore(fs, args, stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	if *user == "" {
		fmt.Fprintln(stderr, "mcpgate: --user is required")
		return ExitInvalidConfig
	}
	ctx := context.Background()
	n, err := st.RevokeRefreshTokens(ctx, *user, *client, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "mcpgate:", err)
		return ExitFailure
	}
	consents, err := st.ListConsents(ctx, *user)
	if err != nil {
		fmt.Fprintln(stderr, "mcpgate:", err)
		return ExitFailure
	}
	for _, c := range consents {
		if *client == "" || c.ClientID == *client {
			if err := st.DeleteConsent(ctx, c.UserID, c.ClientID); err != nil {
				fmt.Fprintln(stderr, "mcpgate:", err)
				return ExitFailure
			}
		}
	}
	fmt.Fprintf(stdout, "revoked %d refresh token(s) and the remembered consent of %s\n", n, *user)
	return ExitOK
}

// userDisable cuts a user off at once: their refresh tokens are revoked,
// and every replica refuses their access tokens within seconds.
func userDisable(args []string, enable bool, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("user disable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "user id (subject)")
	st, _, code := openStore(fs, args, stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	if *user == "" {
		fmt.Fprintln(stderr, "mcpgate: --user is required")
		return ExitInvalidConfig
	}
	ctx := context.Background()
	err := st.UpdateUser(ctx, *user, func(u store.User) (store.User, error) {
		u.Disabled = !enable
		return u, nil
	})
	if err != nil {
		fmt.Fprintln(stderr, "mcpgate:", err)
		return ExitFailure
	}
	if enable {
		fmt.Fprintf(stdout, "user %s enabled\n", *user)
		return ExitOK
	}
	n, err := st.RevokeRefreshTokens(ctx, *user, "", time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "mcpgate:", err)
		return ExitFailure
	}
	fmt.Fprintf(stdout, "user %s disabled; %d refresh token(s) revoked; running gateways refuse their tokens within 5s\n", *user, n)
	return ExitOK
}
