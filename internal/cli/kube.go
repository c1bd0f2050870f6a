package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/kube"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/storage/kubestore"
)

// kubeSource is the Kubernetes side of `zoku run`: with a kubernetes:
// section in the file, the routes, services and certificates of the
// cluster's Ingresses, Gateway API routes and TLS Secrets are merged with
// the file's on every apply.
//
// Wiring (startServer): after building the router's apply function and
// before the first apply,
//
//	if cfg.Kubernetes != nil {
//		if s.kube, err = startKube(ctx, cfg, logger, apply); err != nil {
//			return nil, err
//		}
//		apply = s.kube.apply // the file watcher's reloads merge the cluster too
//	}
//
// and server.close calls s.kube.close() before closing the watcher.
type kubeSource struct {
	ctx  context.Context
	src  *kube.Source
	kcfg *config.Kubernetes // as started; a reload may not change it
}

// startKube connects to the cluster of cfg.Kubernetes and waits until it
// has listed its objects (30 s at most), then follows them. It applies
// nothing itself until the first call of apply: from then on every
// cluster change is applied (debounced, within a second) through
// applyMerged, the same function a file reload uses, merged with the
// file's config in service.
func startKube(ctx context.Context, cfg *config.Config, logger *slog.Logger, applyMerged func(*config.Config) error) (*kubeSource, error) {
	if cfg.Kubernetes == nil {
		return nil, errors.New("kubernetes: no kubernetes section")
	}
	src, err := kube.New(kube.Options{Config: cfg.Kubernetes, Apply: applyMerged, Logger: logger})
	if err != nil {
		return nil, err
	}
	if err := src.Start(ctx); err != nil {
		return nil, err
	}
	return &kubeSource{ctx: ctx, src: src, kcfg: cfg.Kubernetes}, nil
}

// apply applies a config of the file merged with the cluster's routes,
// services and certificates.
func (k *kubeSource) apply(c *config.Config) error {
	if !reflect.DeepEqual(c.Kubernetes, k.kcfg) {
		return errors.New("config: kubernetes: this section cannot change while zoku runs; restart zoku to use the new settings")
	}
	return k.src.ApplyFile(k.ctx, c)
}

// close stops following the cluster; what is in service stays.
func (k *kubeSource) close() {
	if k != nil {
		k.src.Close()
	}
}

// openKubeBackend opens certificates.acme.storage
// "kubernetes://namespace/prefix[?kubeconfig=…&context=…]": Secrets and
// Leases of one namespace (internal/storage/kubestore).
func openKubeBackend(ctx context.Context, spec, setting string) (storage.Backend, io.Closer, error) {
	u, err := kubestore.ParseURL(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", setting, err)
	}
	rc, err := kube.RESTConfig(u.Kubeconfig, u.Context)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", setting, err)
	}
	b, err := kubestore.Open(ctx, rc, kubestore.Options{Namespace: u.Namespace, Prefix: u.Prefix})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", setting, err)
	}
	return b, nopCloser{}, nil
}
