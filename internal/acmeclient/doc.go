// Package acmeclient is zoku's certificate engine at the protocol level: the one
// package that talks RFC 8555 through lego v5. It registers the account
// (with or without external account binding, terms of service),
// orders certificates from names or from a CSR, renews them (optionally with
// an ARI "replaces"), revokes them, reads ACME Renewal Information (RFC 9773),
// and returns what the CA issued. It saves nothing: keeping accounts and
// certificates is the certificate manager's job.
//
// Everything above the wire protocol (when to renew, backoff, serving,
// deploying) lives elsewhere; everything below it is lego's.
package acmeclient
