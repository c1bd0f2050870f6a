package nitrosim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

const sslDir = "/nsconfig/ssl"

// normDir maps the equivalent spellings of a folder to one.
func normDir(d string) string {
	d = strings.TrimSuffix(d, "/")
	d = strings.TrimPrefix(d, "/flash")
	if d == "" {
		return sslDir
	}
	return d
}

// filePath resolves a cert/key attribute: a bare name is in /nsconfig/ssl.
func filePath(f string) string {
	if !strings.Contains(f, "/") {
		return sslDir + "/" + f
	}
	return normDir(path.Dir(f)) + "/" + path.Base(f)
}

func (s *Sim) systemfile(method, name string, args map[string]string, a attrs) reply {
	switch method {
	case http.MethodPost:
		if rep := a.only("filename", "filelocation", "filecontent", "fileencoding"); rep.code != 0 {
			return rep
		}
		fn := a.str("filename")
		switch {
		case fn == "" || strings.Contains(fn, "/") || len(fn) > 63:
			return fail(278, "Invalid argument [filename: 1 to 63 characters, no '/']")
		case a.str("fileencoding") != "BASE64":
			return fail(278, "Invalid argument [fileencoding must be BASE64]")
		}
		data, err := base64.StdEncoding.DecodeString(a.str("filecontent"))
		if err != nil {
			return fail(278, "Invalid argument [filecontent is not base64]")
		}
		if len(data) > 2<<20 {
			return fail(278, "Invalid argument [file larger than 2 MB]")
		}
		p := normDir(a.str("filelocation")) + "/" + fn
		if _, exists := s.files[p]; exists {
			return fail(1642, "Cannot create output file. File already exists")
		}
		s.files[p] = data
		return ok(http.StatusCreated)
	case http.MethodGet:
		dir := normDir(args["filelocation"])
		var out []any
		for p, data := range s.files {
			if path.Dir(p) != dir || (name != "" && path.Base(p) != name) {
				continue
			}
			out = append(out, map[string]any{"filename": path.Base(p), "filelocation": dir, "filecontent": base64.StdEncoding.EncodeToString(data), "fileencoding": "BASE64"})
		}
		if name != "" && len(out) == 0 {
			return fail(1155, "No such file [%s]", name)
		}
		return reply{status: http.StatusOK, key: "systemfile", value: out}
	case http.MethodDelete:
		if name == "" {
			name = args["filename"]
		}
		p := normDir(args["filelocation"]) + "/" + name
		if _, exists := s.files[p]; !exists {
			return fail(1155, "No such file [%s]", name)
		}
		delete(s.files, p)
		return ok(http.StatusOK)
	}
	return fail(278, "Invalid argument [systemfile does not support %s]", method)
}

func validObjectName(n string) bool {
	if n == "" || len(n) > 31 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_#. :@=-", c) >= 0) {
			return false
		}
	}
	return true
}

// loadPair reads and checks a cert file (first certificate only, as without
// bundle) and an optional key file.
func (s *Sim) loadPair(certFile, keyFile string) (leafDER, keyPEM []byte, rep reply) {
	cdata, found := s.files[filePath(certFile)]
	if !found {
		return nil, nil, fail(1647, "Input file(s) not present or not accessible in current partition")
	}
	blk, _ := pem.Decode(cdata)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, nil, fail(1536, "Invalid certificate")
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, nil, fail(1536, "Invalid certificate")
	}
	if keyFile == "" {
		return blk.Bytes, nil, reply{}
	}
	kdata, found := s.files[filePath(keyFile)]
	if !found {
		return nil, nil, fail(1647, "Input file(s) not present or not accessible in current partition")
	}
	key, err := parseKey(kdata)
	if err != nil {
		return nil, nil, fail(1537, "Invalid private key, or PEM passphrase required for this private key")
	}
	pub, isPub := key.(interface{ Public() crypto.PublicKey })
	if !isPub || !samePublic(pub.Public(), leaf.PublicKey) {
		return nil, nil, fail(1538, "Certificate and private key do not match")
	}
	return blk.Bytes, kdata, reply{}
}

func samePublic(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, isEq := a.(equaler)
	return isEq && e.Equal(b)
}

func parseCert(der []byte) (*x509.Certificate, error) { return x509.ParseCertificate(der) }

func parseKey(data []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, errors.New("no PEM key")
	}
	if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		switch k := k.(type) {
		case *ecdsa.PrivateKey:
			return k, nil
		case *rsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
	}
	if k, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("unsupported key")
}

func names(c *x509.Certificate) string {
	n := slices.Clone(c.DNSNames)
	slices.Sort(n)
	return c.Subject.CommonName + "|" + strings.Join(n, ",")
}

func (s *Sim) sslcertkey(method, name, action string, a attrs) reply {
	switch {
	case method == http.MethodGet:
		var out []any
		for n, ck := range s.certkeys {
			if name == "" || n == name {
				out = append(out, s.describe(ck))
			}
		}
		if name != "" && len(out) == 0 {
			return fail(258, "No such resource [certkey, %s]", name)
		}
		return reply{status: http.StatusOK, key: "sslcertkey", value: out}
	case method == http.MethodDelete:
		ck := s.certkeys[name]
		if ck == nil {
			return fail(258, "No such resource [certkey, %s]", name)
		}
		if s.referenced(name) {
			return fail(1541, "Certificate is referenced by another entity (vserver binding or certificate link)")
		}
		delete(s.certkeys, name)
		return ok(http.StatusOK)
	case method == http.MethodPost && action == "":
		if rep := a.only("certkey", "cert", "key", "inform", "passplain", "password", "bundle", "expirymonitor", "notificationperiod", "linkcertkeyname"); rep.code != 0 {
			return rep
		}
		n := a.str("certkey")
		switch {
		case !validObjectName(n):
			return fail(278, "Invalid argument [certkey]")
		case s.certkeys[n] != nil:
			return fail(273, "Resource already exists")
		case strings.EqualFold(a.str("bundle"), "YES"):
			return fail(278, "Invalid argument [bundle: not simulated]")
		}
		leaf, key, rep := s.loadPair(a.str("cert"), a.str("key"))
		if rep.code != 0 {
			return rep
		}
		s.certkeys[n] = &certKey{name: n, cert: a.str("cert"), key: a.str("key"), leafDER: leaf, keyPEM: key}
		return ok(http.StatusCreated)
	case method == http.MethodPost && action == "update":
		if rep := a.only("certkey", "cert", "key", "nodomaincheck", "passplain", "password", "inform", "fipskey"); rep.code != 0 {
			return rep
		}
		ck := s.certkeys[a.str("certkey")]
		if ck == nil {
			return fail(258, "No such resource [certkey, %s]", a.str("certkey"))
		}
		keyFile := a.str("key")
		if keyFile == "" {
			keyFile = ck.key
		}
		leaf, key, rep := s.loadPair(a.str("cert"), keyFile)
		if rep.code != 0 {
			return rep
		}
		old, _ := parseCert(ck.leafDER)
		nw, _ := parseCert(leaf)
		if !a.boolean("nodomaincheck") && names(old) != names(nw) {
			return fail(3585, "Certificate is registered to a different domain. Use the no-domain-check option")
		}
		ck.cert, ck.key, ck.leafDER, ck.keyPEM = a.str("cert"), keyFile, leaf, key
		if ca := s.certkeys[ck.link]; ca != nil {
			caCert, _ := parseCert(ca.leafDER)
			if nw.CheckSignatureFrom(caCert) != nil {
				ck.link = ""
				return fail(1587, "Update of the certificate broke the incompatible CA links; link the new issuer")
			}
		}
		return ok(http.StatusOK)
	case method == http.MethodPost && action == "link":
		if rep := a.only("certkey", "linkcertkeyname"); rep.code != 0 {
			return rep
		}
		ck, ca := s.certkeys[a.str("certkey")], s.certkeys[a.str("linkcertkeyname")]
		switch {
		case ck == nil || ca == nil:
			return fail(258, "No such resource [certkey]")
		case ck == ca:
			return fail(1543, "Cannot link a certificate to itself")
		case ck.link == ca.name:
			return fail(273, "Resource already exists [link]")
		case ck.link != "":
			return fail(278, "Invalid argument [the certificate is already linked to %s; unlink it first]", ck.link)
		}
		leaf, _ := parseCert(ck.leafDER)
		caCert, _ := parseCert(ca.leafDER)
		if leaf.CheckSignatureFrom(caCert) != nil {
			return fail(278, "Invalid argument [%s did not issue %s]", ca.name, ck.name)
		}
		ck.link = ca.name
		return ok(http.StatusOK)
	case method == http.MethodPost && action == "unlink":
		if rep := a.only("certkey"); rep.code != 0 {
			return rep
		}
		ck := s.certkeys[a.str("certkey")]
		if ck == nil {
			return fail(258, "No such resource [certkey]")
		}
		if ck.link == "" {
			return fail(1545, "Certificate has no CA link")
		}
		ck.link = ""
		return ok(http.StatusOK)
	}
	return fail(278, "Invalid argument [sslcertkey does not support %s%s]", method, actionSuffix(action))
}

func (s *Sim) referenced(name string) bool {
	for _, vs := range s.vservers {
		for _, b := range vs.certs {
			if b.certkey == name {
				return true
			}
		}
	}
	for _, ck := range s.certkeys {
		if ck.link == name {
			return true
		}
	}
	return false
}

func (s *Sim) describe(ck *certKey) map[string]any {
	c, _ := parseCert(ck.leafDER)
	now := time.Now()
	status := "Valid"
	switch {
	case now.After(c.NotAfter):
		status = "Expired"
	case now.Before(c.NotBefore):
		status = "Not yet valid"
	}
	return map[string]any{
		"certkey": ck.name, "cert": ck.cert, "key": ck.key, "inform": "PEM",
		"serial":             fmt.Sprintf("%X", c.SerialNumber.Bytes()),
		"status":             status,
		"linkcertkeyname":    ck.link,
		"subject":            " " + c.Subject.String(),
		"issuer":             " " + c.Issuer.String(),
		"clientcertnotafter": c.NotAfter.UTC().Format("Jan  2 15:04:05 2006 GMT"),
		"daystoexpiration":   strconv.Itoa(int(time.Until(c.NotAfter).Hours() / 24)),
		"sandns":             strings.Join(c.DNSNames, ","),
	}
}

func (s *Sim) certBinding(method, vsName string, args map[string]string, a attrs) reply {
	switch method {
	case http.MethodPut, http.MethodPost:
		if rep := a.only("vservername", "certkeyname", "snicert", "ca", "crlcheck", "ocspcheck", "skipcaname"); rep.code != 0 {
			return rep
		}
		vs := s.vservers[a.str("vservername")]
		if vs == nil || vs.serviceType != "SSL" {
			return fail(461, "No such Vserver [%s]", a.str("vservername"))
		}
		ck := s.certkeys[a.str("certkeyname")]
		if ck == nil {
			return fail(258, "No such resource [certkey, %s]", a.str("certkeyname"))
		}
		sni := a.boolean("snicert")
		for _, b := range vs.certs {
			if b.certkey == ck.name {
				return fail(273, "Resource already exists [binding]")
			}
			if !b.sni && !sni {
				return fail(278, "Invalid argument [a server certificate (%s) is already bound; unbind it or bind as snicert]", b.certkey)
			}
		}
		vs.certs = append(vs.certs, certBinding{certkey: ck.name, sni: sni})
		return ok(http.StatusOK)
	case http.MethodGet:
		vs := s.vservers[vsName]
		if vs == nil {
			return fail(461, "No such Vserver [%s]", vsName)
		}
		var out []any
		for _, b := range vs.certs {
			out = append(out, map[string]any{"vservername": vs.name, "certkeyname": b.certkey, "snicert": b.sni})
		}
		return reply{status: http.StatusOK, key: "sslvserver_sslcertkey_binding", value: out}
	case http.MethodDelete:
		vs := s.vservers[vsName]
		if vs == nil {
			return fail(461, "No such Vserver [%s]", vsName)
		}
		for i, b := range vs.certs {
			if b.certkey == args["certkeyname"] {
				vs.certs = slices.Delete(vs.certs, i, i+1)
				return ok(http.StatusOK)
			}
		}
		return fail(258, "No such resource [binding, %s]", args["certkeyname"])
	}
	return fail(278, "Invalid argument [sslvserver_sslcertkey_binding does not support %s]", method)
}
