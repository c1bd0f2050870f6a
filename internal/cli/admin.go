package cli

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/zoku/zoku/internal/admin"
	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy"
)

// adminTokenFile is the generated admin token's file in the storage
// folder.
const adminTokenFile = "admin.token"

// newAdmin builds the admin listener without starting it, so its hooks
// (OnCertEvent, OnRequest, OnReload, InstrumentIssuer, ServerErrorLog) can
// be handed to the engine and the router before they exist. It returns nil
// when admin.disabled is set; every hook is a no-op on nil.
func newAdmin(cfg *config.Config, getenv func(string) string, logger *slog.Logger) *admin.Admin {
	if cfg.Admin.Disabled {
		return nil
	}
	tokenFile := ""
	if st := cfg.Certificates.ACME.Storage; !isStorageURL(st) {
		tokenFile = filepath.Join(strings.TrimPrefix(st, "file:"), adminTokenFile)
	}
	return admin.New(admin.Options{
		Address:   cfg.Admin.Address,
		Token:     string(cfg.Admin.Token),
		TokenFile: tokenFile,
		Logger:    logger,
		Getenv:    getenv,
	})
}

// startAdmin starts publishing this node's status for the fleet view
// (s.fleet, even with admin.disabled: the other nodes show this one),
// then attaches the engine, router and fleet of s to a (from newAdmin) and
// starts listening on admin.address; a nil a (admin.disabled) stops
// there. The caller closes a and then s.fleet (both nil-safe) before
// stopping the router and engine.
func startAdmin(ctx context.Context, s *server, a *admin.Admin) error {
	s.fleet = startFleet(ctx, s)
	if a == nil {
		return nil
	}
	src := admin.Sources{}
	if s.fleet != nil {
		src.Fleet = s.fleet
	}
	if s.eng != nil && s.eng.mgr != nil {
		src.Certs = s.eng.mgr
		src.Tokens = s.eng.store.Backend()
	}
	if s.rt != nil {
		src.Routes = s.rt
	}
	if s.eng != nil && s.eng.targets != nil {
		src.Targets = adminTargets{s.eng.targets}
	}
	return a.Start(ctx, src)
}

// startFleet publishes the node's certificates and targets into the
// shared storage under nodes/<node>/ every 10 s and after each
// certificate event, until its Close marks the node stopped. It returns
// nil when no manager runs.
func startFleet(ctx context.Context, s *server) *certmgr.Fleet {
	if s.eng == nil || s.eng.mgr == nil {
		return nil
	}
	opts := certmgr.FleetOptions{Manager: s.eng.mgr, Version: Version, AdminURL: s.adm.URL, Logger: s.eng.log}
	if r := s.eng.targets; r != nil {
		opts.Targets = r.Status
	}
	f := certmgr.NewFleet(opts)
	f.Start(ctx)
	return f
}

// adminTargets shows the deploy runner to the admin API.
type adminTargets struct{ r *deploy.Runner }

func (t adminTargets) Targets() []admin.TargetStatus { return t.r.Status() }

func (t adminTargets) Deploy(ctx context.Context, name string) error { return t.r.Deploy(ctx, name) }

// chainEvents returns one certificate event sink that calls each non-nil
// sink in order.
func chainEvents(sinks ...func(certmgr.Event)) func(certmgr.Event) {
	var live []func(certmgr.Event)
	for _, f := range sinks {
		if f != nil {
			live = append(live, f)
		}
	}
	return func(ev certmgr.Event) {
		for _, f := range live {
			f(ev)
		}
	}
}
