package kubetest

import "crypto/tls"

// insecureTLS is for the readiness probe only: the API server's
// certificate is made at its first start, after the probe's client.
func insecureTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true} //nolint:gosec // loopback readiness probe of a test server
}
