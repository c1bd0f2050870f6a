package etcdstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles name the PEM files of a TLS connection to etcd.
type TLSFiles struct {
	// CAFile holds the CA certificates the members' certificates must
	// chain to; empty means the system's roots.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key, for a
	// cluster started with --client-cert-auth; both or neither.
	CertFile, KeyFile string
}

// ClientTLS builds the TLS configuration of files: TLS 1.2 or newer, the
// CA of CAFile (each member's certificate must be valid for the host of
// its endpoint), and the client certificate, which is read again at every
// new connection so that a renewed certificate is used without a restart.
// It reads every file once now, so a missing or bad file is reported at
// start; errors name the file and never show a key.
func ClientTLS(files TLSFiles) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if files.CAFile != "" {
		pem, err := os.ReadFile(files.CAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd: cannot read the CA file %s: %w", files.CAFile, pathErr(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd: the CA file %s holds no PEM certificate", files.CAFile)
		}
		c.RootCAs = pool
	}
	if (files.CertFile == "") != (files.KeyFile == "") {
		return nil, errors.New("etcd: a client certificate needs both its certificate file and its key file")
	}
	if files.CertFile != "" {
		if _, err := loadPair(files); err != nil {
			return nil, err
		}
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return loadPair(files)
		}
	}
	return c, nil
}

// loadPair reads the client certificate and key.
func loadPair(files TLSFiles) (*tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("etcd: the client certificate %s with key %s: %w; check both files exist, are PEM and belong together", files.CertFile, files.KeyFile, pathErr(err))
	}
	return &pair, nil
}

// pathErr drops the operation and path of a file error (the message
// names the file already).
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
