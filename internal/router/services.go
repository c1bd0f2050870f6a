package router

import (
	"log/slog"
	"net/netip"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/proxy"
	"github.com/zoku/zoku/internal/proxy/health"
)

// anyPeer is handed to the proxy as its trusted set: the router has already
// removed X-Forwarded-* from peers its entry point does not trust, so what
// is left is to be kept and extended.
var anyPeer = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

// proxyServices builds proxy.Services sharing one health registry, owned
// by the router that calls it.
func proxyServices(logger *slog.Logger) ServiceFactory {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := health.NewRegistry()
	return func(name string, cfg *config.Service) (Service, error) {
		return proxy.NewService(name, cfg, reg, proxy.Options{TrustedProxies: anyPeer, Logger: logger})
	}
}
