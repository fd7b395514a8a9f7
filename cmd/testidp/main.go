// Command testidp runs the test OpenID Provider (internal/testidp) on its
// own, for examples and scripts:
//
//	testidp -listen 127.0.0.1:9400 -config users.yaml [-issuer URL] [-admin-token T]
//
// The config file:
//
//	issuer: http://127.0.0.1:9400   # optional; default http://LISTEN-ADDRESS
//	users:
//	  - username: alice
//	    password: alice-password
//	    email: alice@tenant-a.example
//	    groups: [Schedulers]
//	clients:
//	  - id: mcpgate
//	    secret: mcpgate-secret        # none: a public client
//	    redirect_uris: [http://127.0.0.1:8080/oauth/callback/tenant-a]
//
// With -admin-token (or TESTIDP_ADMIN_TOKEN), these answer 204 to a POST
// with "Authorization: Bearer TOKEN":
//
//	/admin/users/{username}/disable
//	/admin/users/{username}/enable
//	/admin/rotate-key
//
// It prints "testidp listening on http://ADDR" once it accepts requests.
package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/internal/testidp"
	"go.yaml.in/yaml/v3"
)

type config struct {
	Issuer  string           `yaml:"issuer"`
	Users   []testidp.User   `yaml:"users"`
	Clients []testidp.Client `yaml:"clients"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "testidp:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("testidp", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9400", "address to listen on")
	cfgPath := fs.String("config", "", "YAML file with users and clients (required)")
	issuer := fs.String("issuer", "", "issuer URL (default: the config's, else http://LISTEN-ADDRESS)")
	adminToken := fs.String("admin-token", os.Getenv("TESTIDP_ADMIN_TOKEN"), "enables /admin/ endpoints for this bearer token")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return errors.New("-config is required")
	}
	cfg, err := load(*cfgPath)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	addr := "http://" + l.Addr().String()
	iss := *issuer
	if iss == "" {
		iss = cfg.Issuer
	}
	if iss == "" {
		iss = addr
	}
	srv, err := testidp.New(iss, cfg.Users, cfg.Clients)
	if err != nil {
		l.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv)
	if *adminToken != "" {
		admin(mux, srv, *adminToken)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	fmt.Printf("testidp listening on %s\n", addr)
	if iss != addr {
		fmt.Printf("testidp issuer %s\n", iss)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

func load(path string) (config, error) {
	var cfg config
	f, err := os.Open(path)
	if err != nil {
		return cfg, err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

var errNoUser = errors.New("no such user")

func admin(mux *http.ServeMux, srv *testidp.Server, token string) {
	auth := func(h func(*http.Request) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			got := []byte(r.Header.Get("Authorization"))
			if subtle.ConstantTimeCompare(got, []byte("Bearer "+token)) != 1 {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			if err := h(r); errors.Is(err, errNoUser) {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			} else if err != nil {
				slog.Error("admin", "path", r.URL.Path, "err", err)
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			slog.Info("admin", "path", r.URL.Path)
			w.WriteHeader(http.StatusNoContent)
		}
	}
	mux.HandleFunc("POST /admin/users/{username}/disable", auth(func(r *http.Request) error {
		if srv.Subject(r.PathValue("username")) == "" {
			return errNoUser
		}
		srv.DisableUser(r.PathValue("username"))
		return nil
	}))
	mux.HandleFunc("POST /admin/users/{username}/enable", auth(func(r *http.Request) error {
		if srv.Subject(r.PathValue("username")) == "" {
			return errNoUser
		}
		srv.EnableUser(r.PathValue("username"))
		return nil
	}))
	mux.HandleFunc("POST /admin/rotate-key", auth(func(*http.Request) error {
		return srv.RotateKey()
	}))
}
