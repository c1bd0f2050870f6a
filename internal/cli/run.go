package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zoku/zoku/internal/admin"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy"
	"github.com/zoku/zoku/internal/router"
)

func runRun(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("run", "", "Run the edge router: entry points, routes and services from --config, with\ncertificates obtained and renewed for every routed host. The file is watched:\na valid change is applied without dropping connections, an invalid one is\nrefused with its line and the running config stays. SIGHUP reloads too.\n\nExample (no domain or internet needed):\n  zoku run --config examples/quickstart.yaml", env)
	var (
		path  string
		check bool
		prune bool
	)
	fs.StringVar(&path, "config", "zoku.yaml", "configuration file (YAML, or TOML with the same keys)")
	fs.BoolVar(&check, "check", false, "validate the configuration and exit")
	fs.BoolVar(&prune, "prune", false, "archive the files of certificates no route or domain needs any more (default: keep them)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(path, env.Getenv)
	if err != nil {
		return err
	}
	if check {
		fmt.Fprintf(env.Stdout, "%s: valid (%d entry points, %d routes, %d services)\n", path, len(cfg.EntryPoints), len(cfg.Routes), len(cfg.Services))
		return nil
	}
	logger, err := newLevelLogger(env.Stderr, cfg.Log.Format, logLevel(cfg.Log.Level, false))
	if err != nil {
		return err
	}
	srv, err := startServer(ctx, env, path, cfg, logger, engineOptions{prune: prune})
	if err != nil {
		return err
	}
	defer srv.close()
	printQuickstart(env, cfg, srv.eng)
	if u := srv.adm.URL(); u != "" {
		fmt.Fprintf(env.Stdout, "dashboard and API: %s (bearer token: %s)\n", u, adminTokenHint(cfg, srv.eng))
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case ev := <-srv.watcher.Events():
			srv.adm.OnReload(ev.Applied)
		case <-hup:
			logger.Info("SIGHUP: reloading configuration", "file", path)
			srv.watcher.Reload()
		case <-ctx.Done():
			logger.Info("shutting down: draining connections")
			return nil
		}
	}
}

// server is a running `zoku run`: engine, router and config watcher.
type server struct {
	adm     *admin.Admin
	fleet   *certmgr.Fleet // this node's status for the fleet view; started by startAdmin (admin.go)
	eng     *engine
	rt      *router.Router
	watcher *config.Watcher
	alog    io.Closer
	kube    *kubeSource // nil without a kubernetes section (kube.go)
}

// startServer starts everything `zoku run` runs. On error everything it
// started is stopped again (listeners closed, files left as they were), and
// the error is one line naming the setting at fault.
func startServer(ctx context.Context, env Env, path string, cfg *config.Config, logger *slog.Logger, eo engineOptions) (_ *server, err error) {
	netHTTP, err := netHTTPOnly(env.Getenv)
	if err != nil {
		return nil, err
	}
	// s, not the named result: "return nil, err" clears the result before
	// the deferred cleanup runs.
	s := &server{adm: newAdmin(cfg, env.Getenv, logger)}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	eo.onEvent = chainEvents(eo.onEvent, s.adm.OnCertEvent)
	eo.instrument = s.adm.InstrumentIssuer
	eo.output = env.Stderr
	onDeploy := eo.onDeploy
	eo.onDeploy = func(target string, results []deploy.Result) {
		for _, r := range results {
			s.adm.OnDeploy(admin.DeployEvent{Target: r.Target, Domain: r.Certificate, Err: r.Err})
		}
		if onDeploy != nil {
			onDeploy(target, results)
		}
	}
	if s.eng, err = startEngine(ctx, env, cfg, logger, eo); err != nil {
		return nil, err
	}
	var alog io.Writer
	switch cfg.AccessLog.Path {
	case "":
	case "stdout":
		alog = env.Stdout
	case "stderr":
		alog = env.Stderr
	default:
		f, err := os.OpenFile(cfg.AccessLog.Path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			fix := "create its folder or choose another path"
			if errors.Is(err, syscall.EISDIR) {
				fix = "it is a folder: name a file in it"
			}
			return nil, fmt.Errorf("accessLog.path: cannot open %q for appending (%v); %s", cfg.AccessLog.Path, unwrapPath(err), fix)
		}
		s.alog, alog = f, f
	}
	s.rt = router.New(router.Deps{
		Logger: logger, Challenges: s.eng.http01.Handler, ALPN: s.eng.tlsalpn.GetCertificate,
		IsALPNChallenge: isALPN, Certs: s.eng.mgr, AccessLog: alog,
		OnRequest: s.adm.OnRequest, ErrorLog: s.adm.ServerErrorLog(logger),
		NetHTTPOnly: netHTTP, OnHandOver: s.adm.OnHandOver,
	})
	// A reload is applied whole or not at all: the engine side is built
	// first, then the router applies (and may still refuse), then the
	// engine side is switched.
	apply := func(c *config.Config) error {
		return s.eng.apply(ctx, c, func(c *config.Config) error { return s.rt.Apply(ctx, c) })
	}
	// Kubernetes (kube.go): from the first apply on, every apply merges
	// the cluster's routes, services and certificates with the file's.
	if cfg.Kubernetes != nil {
		if s.kube, err = startKube(ctx, cfg, logger, apply); err != nil {
			return nil, err
		}
		apply = s.kube.apply
	}
	if err := apply(cfg); err != nil {
		return nil, err
	}
	if s.watcher, err = config.Watch(ctx, path, env.Getenv, logger, apply); err != nil {
		return nil, err
	}
	s.watcher.SetRunning(cfg)
	if err = startAdmin(ctx, s, s.adm); err != nil {
		return nil, err
	}
	return s, nil
}

// netHTTPOnly reads ZOKU_HTTP1_SERVER: "net/http" is the way back to
// net/http's server for every HTTP/1.x connection, should zoku's own loop
// (internal/http1) misbehave; "zoku" or nothing keeps the loop.
func netHTTPOnly(getenv func(string) string) (bool, error) {
	switch v := getenv("ZOKU_HTTP1_SERVER"); v {
	case "", "zoku":
		return false, nil
	case "net/http":
		return true, nil
	default:
		return false, fmt.Errorf("ZOKU_HTTP1_SERVER=%q is not a known HTTP/1.1 server; set it to \"zoku\" (the default) or \"net/http\", or unset it", v)
	}
}

// unwrapPath drops the path from a file error (the message names it).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// close stops watching, drains the entry points (30 s at most) and stops
// the engine. It is safe on a half-started server.
func (s *server) close() {
	if s == nil {
		return
	}
	if s.adm != nil {
		_ = s.adm.Close()
	}
	_ = s.fleet.Close() // marks this node stopped in storage, before the engine closes the storage
	s.kube.close()
	if s.watcher != nil {
		_ = s.watcher.Close()
	}
	if s.rt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = s.rt.Shutdown(ctx)
		cancel()
	}
	s.eng.close()
	if s.alog != nil {
		_ = s.alog.Close()
	}
}

// printQuickstart tells the user how to reach what is routed.
func printQuickstart(env Env, cfg *config.Config, eng *engine) {
	var tlsPort int
	names := make([]string, 0, len(cfg.EntryPoints))
	for n := range cfg.EntryPoints {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if ep := cfg.EntryPoints[n]; ep.TLS != nil {
			tlsPort = ep.Port()
			break
		}
	}
	hosts := cfg.RoutedHosts()
	if tlsPort == 0 || len(hosts) == 0 || strings.HasPrefix(hosts[0], "*.") {
		return
	}
	url := "https://" + hosts[0]
	if tlsPort != 443 {
		url += ":" + strconv.Itoa(tlsPort)
	}
	if eng.ca != nil {
		fmt.Fprintf(env.Stdout, "zoku is serving %s (certificate from the embedded CA; first one takes about a second)\ncheck it: curl --cacert %s %s/\n",
			url, filepath.Join(eng.store.Root(), "embedded-ca", "root.pem"), url)
		return
	}
	fmt.Fprintf(env.Stdout, "zoku is serving %s\n", url)
}

// adminTokenHint says where the admin token is, never the token itself.
func adminTokenHint(cfg *config.Config, eng *engine) string {
	if cfg.Admin.Token != "" {
		return "admin.token in the config"
	}
	if eng.store.Root() == "" {
		return "the key admin.token in " + eng.store.Backend().String()
	}
	return "the file " + filepath.Join(eng.store.Root(), "admin.token")
}
