package netscaler

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/zoku/zoku/internal/deploy/internal/certfile"
	"github.com/zoku/zoku/internal/deploy/netscaler/internal/nitro"
)

// sslDir is where certificates live on the appliance (the sslcertkey
// reference warns that other folders break HA synchronisation).
const sslDir = "/nsconfig/ssl"

// suffix names files after the certificate: the last 16 hex digits of its
// serial, unique enough among one certkey's certificates.
func suffix(c *x509.Certificate) string {
	s := certfile.SerialHex(c.SerialNumber)
	if len(s) > 16 {
		s = s[len(s)-16:]
	}
	return strings.ToLower(s)
}

func (t *Target) deploy(ctx context.Context, p *certfile.Parts) (err error) {
	ck := t.opts.CertKey
	cur, err := t.certKey(ctx, ck)
	if err != nil {
		return fmt.Errorf("read certkey %s: %w", ck, err)
	}
	if cur != nil && cur.serial() != nil && cur.serial().Cmp(p.Leaf.SerialNumber) == 0 {
		t.log.Info("certkey already holds this certificate", "certkey", ck, "serial", certfile.SerialHex(p.Leaf.SerialNumber))
		return t.verifyTLS(ctx, p.Leaf)
	}
	if cur == nil {
		if err := t.checkFirstBind(ctx); err != nil {
			return err
		}
	}

	certFile := ck + "-" + suffix(p.Leaf) + ".crt"
	keyFile := ck + "-" + suffix(p.Leaf) + ".key"
	var uploaded []string
	committed := false
	defer func() {
		if committed {
			return
		}
		// Whatever failed, the files of the new certificate go (unless a
		// certkey uses them after all).
		t.deleteUnused(context.WithoutCancel(ctx), uploaded)
	}()
	for _, f := range []struct {
		name string
		data []byte
	}{{certFile, p.LeafPEM}, {keyFile, p.KeyPEM}} {
		if err := t.upload(ctx, f.name, f.data); err != nil {
			return err
		}
		uploaded = append(uploaded, f.name)
	}
	caName := ""
	if len(p.Chain) > 0 {
		name, files, err := t.ensureCA(ctx, p.Chain[0])
		uploaded = append(uploaded, files...)
		if err != nil {
			return err
		}
		caName = name
	}

	if cur == nil {
		if err := t.addAndBind(ctx, certFile, keyFile); err != nil {
			return err
		}
	} else {
		err := t.nc.Action(ctx, "sslcertkey", "update", map[string]any{"certkey": ck, "cert": certFile, "key": keyFile, "nodomaincheck": true})
		switch {
		case nitro.HasCode(err, nitro.CodeLinksBroken, nitro.CodeLinksBrokenExpired, nitro.CodeLinksBrokenNotYet):
			t.log.Info("the new certificate has another issuer; the CA link was dropped and is made again", "certkey", ck)
		case err != nil:
			return fmt.Errorf("update certkey %s: %w", ck, err)
		}
	}
	if err := t.relink(ctx, ck, caName); err != nil {
		t.rollback(context.WithoutCancel(ctx), cur)
		return err
	}
	if err := t.check(ctx, p.Leaf); err != nil {
		t.rollback(context.WithoutCancel(ctx), cur)
		return err
	}
	committed = true
	t.log.Info("certificate in service", "certkey", ck, "serial", certfile.SerialHex(p.Leaf.SerialNumber), "ssl_vserver", t.opts.SSLVserver)
	if cur != nil {
		t.deleteUnused(ctx, []string{cur.Cert, cur.Key})
	}
	if t.opts.Save {
		return t.save(ctx)
	}
	return nil
}

// checkFirstBind makes sure the SSL vserver exists and, for a server
// (non-SNI) certificate, that none is bound yet: zoku does not replace a
// certificate it was not told about.
func (t *Target) checkFirstBind(ctx context.Context) error {
	var binds []struct {
		CertKey string `json:"certkeyname"`
		SNI     any    `json:"snicert"`
	}
	err := t.nc.Get(ctx, "sslvserver_sslcertkey_binding", t.opts.SSLVserver, "", &binds)
	if nitro.NotFound(err) {
		return fmt.Errorf("no SSL vserver named %q; check netscaler.sslVserver", t.opts.SSLVserver)
	}
	if err != nil {
		return fmt.Errorf("read the certificates of ssl vserver %s: %w", t.opts.SSLVserver, err)
	}
	if t.opts.SNI {
		return nil
	}
	for _, b := range binds {
		if fmt.Sprint(b.SNI) != "true" {
			return fmt.Errorf("ssl vserver %s already has certkey %q bound as its server certificate; set netscaler.certKey: %s to update it in place, or sni: true", t.opts.SSLVserver, b.CertKey, b.CertKey)
		}
	}
	return nil
}

func (t *Target) addAndBind(ctx context.Context, certFile, keyFile string) error {
	ck := t.opts.CertKey
	if err := t.nc.Add(ctx, "sslcertkey", map[string]any{"certkey": ck, "cert": certFile, "key": keyFile, "inform": "PEM"}); err != nil {
		return fmt.Errorf("add certkey %s: %w", ck, err)
	}
	bind := map[string]any{"vservername": t.opts.SSLVserver, "certkeyname": ck}
	if t.opts.SNI {
		bind["snicert"] = true
	}
	if err := t.nc.Bind(ctx, "sslvserver_sslcertkey_binding", bind); err != nil {
		if derr := t.nc.Delete(context.WithoutCancel(ctx), "sslcertkey", ck, ""); derr != nil {
			t.log.Warn("could not remove the certkey after the failed bind", "certkey", ck, "error", derr)
		}
		return fmt.Errorf("bind certkey %s to ssl vserver %s: %w", ck, t.opts.SSLVserver, err)
	}
	t.log.Info("certkey added and bound", "certkey", ck, "ssl_vserver", t.opts.SSLVserver, "sni", t.opts.SNI)
	return nil
}

// upload writes one file to /nsconfig/ssl. A file of that name that
// exists (1642) is reused when its content is the same, else replaced:
// its name is ours and no certkey holds this certificate.
func (t *Target) upload(ctx context.Context, name string, data []byte) error {
	obj := map[string]any{"filename": name, "filelocation": sslDir, "filecontent": base64.StdEncoding.EncodeToString(data), "fileencoding": "BASE64"}
	err := t.nc.Add(ctx, "systemfile", obj)
	if !nitro.HasCode(err, nitro.CodeFileExists) {
		if err != nil {
			return fmt.Errorf("upload %s: %w", name, err)
		}
		return nil
	}
	var files []struct {
		Content string `json:"filecontent"`
	}
	if err := t.nc.Get(ctx, "systemfile", name, nitro.Args("filelocation", sslDir), &files); err == nil && len(files) == 1 {
		if old, err := base64.StdEncoding.DecodeString(files[0].Content); err == nil && bytes.Equal(old, data) {
			return nil
		}
	}
	if err := t.nc.Delete(ctx, "systemfile", name, nitro.Args("filelocation", sslDir)); err != nil && !nitro.NotFound(err) {
		return fmt.Errorf("replace %s: %w", name, err)
	}
	if err := t.nc.Add(ctx, "systemfile", obj); err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	return nil
}

// ensureCA finds the certkey of the intermediate by serial, or uploads it
// and adds a CA certkey (no key). It returns the certkey's name and the
// files it uploaded.
func (t *Target) ensureCA(ctx context.Context, ca *x509.Certificate) (string, []string, error) {
	var all []certKeyInfo
	if err := t.nc.Get(ctx, "sslcertkey", "", "", &all); err != nil && !nitro.NotFound(err) {
		return "", nil, fmt.Errorf("list certkeys: %w", err)
	}
	for _, c := range all {
		if s := c.serial(); s != nil && s.Cmp(ca.SerialNumber) == 0 && c.CertKey != t.opts.CertKey {
			return c.CertKey, nil, nil
		}
	}
	name := "zoku-ca-" + suffix(ca)
	file := name + ".crt"
	if err := t.upload(ctx, file, certfile.PEM(ca)); err != nil {
		return "", nil, err
	}
	err := t.nc.Add(ctx, "sslcertkey", map[string]any{"certkey": name, "cert": file, "inform": "PEM"})
	if err != nil && !nitro.HasCode(err, nitro.CodeAlreadyExists) {
		return "", []string{file}, fmt.Errorf("add CA certkey %s: %w", name, err)
	}
	t.log.Info("intermediate certificate added", "certkey", name, "subject", ca.Subject.CommonName)
	return name, nil, nil
}

// relink makes ck linked to caName (nothing when caName is empty).
func (t *Target) relink(ctx context.Context, ck, caName string) error {
	if caName == "" {
		return nil
	}
	cur, err := t.certKey(ctx, ck)
	if err != nil || cur == nil {
		return fmt.Errorf("read certkey %s: %w", ck, errors.Join(err, errIfNil(cur)))
	}
	if cur.Link == caName {
		return nil
	}
	if cur.Link != "" {
		if err := t.nc.Action(ctx, "sslcertkey", "unlink", map[string]any{"certkey": ck}); err != nil && !nitro.HasCode(err, nitro.CodeNoCALink) {
			return fmt.Errorf("unlink certkey %s from %s: %w", ck, cur.Link, err)
		}
	}
	err = t.nc.Action(ctx, "sslcertkey", "link", map[string]any{"certkey": ck, "linkcertkeyname": caName})
	if err != nil && !nitro.HasCode(err, nitro.CodeAlreadyExists) {
		return fmt.Errorf("link certkey %s to %s: %w", ck, caName, err)
	}
	return nil
}

func errIfNil(c *certKeyInfo) error {
	if c == nil {
		return errors.New("it is gone")
	}
	return nil
}

// check reads the certkey back (serial, status) and, if configured, looks
// at what the SSL vserver serves.
func (t *Target) check(ctx context.Context, leaf *x509.Certificate) error {
	ck, err := t.certKey(ctx, t.opts.CertKey)
	if err != nil || ck == nil {
		return fmt.Errorf("read certkey %s back: %w", t.opts.CertKey, errors.Join(err, errIfNil(ck)))
	}
	if s := ck.serial(); s == nil || s.Cmp(leaf.SerialNumber) != 0 {
		return fmt.Errorf("certkey %s holds serial %s after the update, not %s", t.opts.CertKey, ck.Serial, certfile.SerialHex(leaf.SerialNumber))
	}
	if ck.Status != "" && !strings.EqualFold(ck.Status, "Valid") {
		return fmt.Errorf("certkey %s has status %q after the update", t.opts.CertKey, ck.Status)
	}
	return t.verifyTLS(ctx, leaf)
}

// rollback puts the previous certificate back after a failed check: the
// old files into the certkey (and its old link), or, for a first deploy,
// the new certkey away.
func (t *Target) rollback(ctx context.Context, prev *certKeyInfo) {
	ck := t.opts.CertKey
	if prev == nil {
		_ = t.nc.Delete(ctx, "sslvserver_sslcertkey_binding", t.opts.SSLVserver, nitro.Args("certkeyname", ck))
		_ = t.nc.Action(ctx, "sslcertkey", "unlink", map[string]any{"certkey": ck})
		if err := t.nc.Delete(ctx, "sslcertkey", ck, ""); err != nil {
			t.log.Error("rollback: could not remove the new certkey", "certkey", ck, "error", err)
		}
		return
	}
	err := t.nc.Action(ctx, "sslcertkey", "update", map[string]any{"certkey": ck, "cert": prev.Cert, "key": prev.Key, "nodomaincheck": true})
	if err != nil && !nitro.HasCode(err, nitro.CodeLinksBroken, nitro.CodeLinksBrokenExpired, nitro.CodeLinksBrokenNotYet) {
		t.log.Error("rollback: could not put the previous certificate back", "certkey", ck, "error", err)
		return
	}
	if err := t.relink(ctx, ck, prev.Link); err != nil {
		t.log.Warn("rollback: could not restore the CA link", "certkey", ck, "error", err)
	}
	t.log.Info("rollback: the previous certificate is back in the certkey", "certkey", ck, "serial", prev.Serial)
}

// deleteUnused removes files in /nsconfig/ssl that no certkey uses.
func (t *Target) deleteUnused(ctx context.Context, files []string) {
	if len(files) == 0 {
		return
	}
	var all []certKeyInfo
	if err := t.nc.Get(ctx, "sslcertkey", "", "", &all); err != nil && !nitro.NotFound(err) {
		t.log.Warn("cannot list certkeys; old files stay", "error", err)
		return
	}
	used := map[string]bool{}
	for _, c := range all {
		used[inSSLDir(c.Cert)] = true
		used[inSSLDir(c.Key)] = true
	}
	for _, f := range files {
		p := inSSLDir(f)
		if f == "" || used[p] || path.Dir(p) != sslDir {
			continue
		}
		err := t.nc.Delete(ctx, "systemfile", path.Base(p), nitro.Args("filelocation", sslDir))
		if err != nil && !nitro.NotFound(err) {
			t.log.Warn("could not delete an unused file", "file", p, "error", err)
			continue
		}
		t.log.Debug("unused file deleted", "file", p)
	}
}

// inSSLDir resolves a certkey file attribute to a full path.
func inSSLDir(f string) string {
	if f == "" {
		return ""
	}
	if !strings.Contains(f, "/") {
		return sslDir + "/" + f
	}
	return strings.TrimPrefix(path.Clean(f), "/flash")
}
