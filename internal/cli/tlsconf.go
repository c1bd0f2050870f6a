package cli

import "crypto/tls"

// tlsDefaults is the client TLS configuration for etcds:// without a
// storage section: the system's roots, TLS 1.2 or newer.
func tlsDefaults() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS12} }
