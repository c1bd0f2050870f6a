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

// startAdmin attaches the engine and router of s to a (from newAdmin)
// and starts listening on admin.address. It does nothing for a nil a
// (admin.disabled). The caller closes a with Close (nil-safe) before
// stopping the router and engine.
func startAdmin(ctx context.Context, s *server, a *admin.Admin) error {
	if a == nil {
		return nil
	}
	src := admin.Sources{}
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

// adminTargets shows the deploy runner to the admin API.
type adminTargets struct{ r *deploy.Runner }

func (t adminTargets) Targets() []admin.TargetStatus {
	st := t.r.Status()
	out := make([]admin.TargetStatus, len(st))
	for i, s := range st {
		out[i] = admin.TargetStatus(s)
	}
	return out
}

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
