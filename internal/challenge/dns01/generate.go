package dns01

// The provider table (zz_gen_providers.go) and the catalogue registrations
// (catalogue/zz_gen_catalogue.go) are generated from the lego module in
// go.mod; run `go generate ./internal/challenge/dns01` after changing lego's
// version or the built-ins below.
//go:generate go run ./gen -builtin dnsupdate,exec,httpreq,iijdpf
