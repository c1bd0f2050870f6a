package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/embedca"
)

// trustTimeout bounds one run of the trust store's update tool.
const trustTimeout = 2 * time.Minute

// trustStore is the system trust store `zoku trust` writes: Debian's
// (and Ubuntu's) local CA folder and the tool that rebuilds
// /etc/ssl/certs from it. Tests replace its parts.
type trustStore struct {
	// dir holds the local CA certificates, one <name>.crt each.
	dir string
	// certsDir is where the tool links them (<name>.pem and OpenSSL's
	// <hash>.<n> links) and writes the bundle.
	certsDir string
	// tool is the name of the rebuild tool.
	tool string
	// find looks the tool up.
	find func(name string) (string, error)
	// euid is the effective user ID of this process.
	euid func() int
}

// systemTrustStore is the store of a Debian-like system.
func systemTrustStore() trustStore {
	return trustStore{
		dir:      "/usr/local/share/ca-certificates",
		certsDir: "/etc/ssl/certs",
		tool:     "update-ca-certificates",
		find:     findSbin,
		euid:     os.Geteuid,
	}
}

// findSbin looks name up in PATH, then in the sbin folders that a
// non-root PATH may lack.
func findSbin(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
		if q, serr := exec.LookPath(filepath.Join(dir, name)); serr == nil {
			return q, nil
		}
	}
	return "", err
}

func runTrust(ctx context.Context, env Env, args []string) error {
	return trustCommand(ctx, env, args, systemTrustStore())
}

// trustCommand is `zoku trust` against the trust store ts.
func trustCommand(ctx context.Context, env Env, args []string, ts trustStore) error {
	fset := newFlagSet("trust", "", "Add the embedded CA's root (<path>/embedded-ca/root.pem) to the system trust store,\nso that curl and other programs using it accept the certificates zoku gets from\nthe embedded CA without --cacert; --uninstall takes it out again. Needs root.\nDebian and Ubuntu (update-ca-certificates) are supported; on other systems the\nerror says what to do by hand. Firefox and Chromium on Linux keep their own\nstore: import root.pem there.\n\nExample:\n  sudo zoku trust --path .zoku", env)
	var (
		path, cfgPath string
		uninstall     bool
	)
	fset.StringVar(&path, "path", ".zoku", "storage folder whose embedded CA root to trust")
	fset.StringVar(&cfgPath, "config", "", "configuration file: use its certificates.acme.storage instead of --path")
	fset.BoolVar(&uninstall, "uninstall", false, "remove the root from the system trust store")
	if err := parse(fset, args); err != nil {
		return err
	}
	pathSet := false
	fset.Visit(func(f *flag.Flag) { pathSet = pathSet || f.Name == "path" })
	if cfgPath != "" {
		if pathSet {
			return errors.New("give --path or --config, not both")
		}
		cfg, err := config.Load(cfgPath, env.Getenv)
		if err != nil {
			return err
		}
		path = cfg.Certificates.ACME.Storage
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	again := "sudo zoku trust --path " + path
	if uninstall {
		again += " --uninstall"
	}

	stateDir := embedca.StateDirIn(path)
	root, err := embedca.LoadRoot(stateDir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && uninstall:
		return fmt.Errorf("no embedded CA root in %s, so zoku cannot tell which root to remove; to remove every zoku root: sudo rm %s/zoku-embedded-*.crt && sudo %s --fresh", stateDir, ts.dir, ts.tool)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no embedded CA root in %s; run zoku once with --server embedded (or server: embedded) on this storage to create it, or name the storage that has one with --path or --config", stateDir)
	case err != nil:
		return err
	}
	rootFile := filepath.Join(stateDir, embedca.RootFile)
	if runtime.GOOS != "linux" {
		return fmt.Errorf("zoku trust writes Debian-style trust stores only; on %s add %s to the system trust store by hand (macOS: sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain %s)", runtime.GOOS, rootFile, rootFile)
	}
	tool, err := ts.find(ts.tool)
	if err != nil {
		return fmt.Errorf("%s not found: it comes with the ca-certificates package of Debian and Ubuntu (apt-get install ca-certificates); elsewhere trust %s by hand (Fedora/RHEL: copy it to /etc/pki/ca-trust/source/anchors/ and run update-ca-trust; Arch, openSUSE: trust anchor %s)", ts.tool, rootFile, rootFile)
	}
	if ts.euid() != 0 {
		return fmt.Errorf("the system trust store belongs to root; run: %s", again)
	}

	id := embedca.ShortID(root)
	target := filepath.Join(ts.dir, "zoku-embedded-"+id+".crt")
	if uninstall {
		if err := os.Remove(target); errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(env.Stdout, "root %s is not in the system trust store (%s); nothing to do\n", id, target)
			return nil
		} else if err != nil {
			return fmt.Errorf("remove %s: %w", target, err)
		}
		// The tool rebuilds the bundle but keeps the links to a removed
		// file; zoku takes out its own, and nothing else.
		var args []string
		if ts.removeLinks(target) {
			args = append(args, "--fresh")
		}
		if err := runTrustTool(ctx, tool, args...); err != nil {
			return fmt.Errorf("%s removed, but %w; run 'sudo %s --fresh' to finish", target, err, ts.tool)
		}
		fmt.Fprintf(env.Stdout, "root %s (%s) removed from the system trust store\n", id, root.Subject.CommonName)
		return nil
	}

	created, err := writeTrustFile(ts.dir, target, root)
	if err != nil {
		return err
	}
	if err := runTrustTool(ctx, tool); err != nil {
		if created {
			// Leave the store as it was.
			_ = os.Remove(target)
		}
		return err
	}
	fmt.Fprintf(env.Stdout, "root %s (%s) added to the system trust store as %s\nplain curl now accepts the embedded CA's certificates for %s; undo with: %s --uninstall\n",
		id, root.Subject.CommonName, target, path, strings.TrimSuffix(again, " --uninstall"))
	return nil
}

// removeLinks removes the links the tool made for target in certsDir:
// <name>.pem, and the OpenSSL <hash>.<n> links to it. It reports whether
// the tool must rebuild all links (--fresh): a removed <hash>.<n> had a
// successor <hash>.<n+1> (a hash collision), which OpenSSL would no longer
// find, or a link could not be removed.
func (ts trustStore) removeLinks(target string) (fresh bool) {
	pemName := strings.TrimSuffix(filepath.Base(target), ".crt") + ".pem"
	pemLink := filepath.Join(ts.certsDir, pemName)
	if dest, err := os.Readlink(pemLink); err == nil && dest == target {
		if os.Remove(pemLink) != nil {
			fresh = true
		}
	}
	entries, err := os.ReadDir(ts.certsDir)
	if err != nil {
		return true
	}
	for _, e := range entries {
		link := filepath.Join(ts.certsDir, e.Name())
		dest, err := os.Readlink(link)
		if err != nil || (dest != pemName && dest != pemLink) {
			continue
		}
		hash, n, ok := strings.Cut(e.Name(), ".")
		next := ""
		if i, err := strconv.Atoi(n); ok && err == nil {
			next = hash + "." + strconv.Itoa(i+1)
		}
		if os.Remove(link) != nil {
			fresh = true
		}
		if _, err := os.Lstat(filepath.Join(ts.certsDir, next)); next != "" && err == nil {
			fresh = true
		}
	}
	return fresh
}

// writeTrustFile writes root's PEM to target (0644, readable by every
// program that checks certificates) by temp file and rename; the temp
// name does not end in .crt, so the tool never reads a partial file. It
// reports whether target is new.
func writeTrustFile(dir, target string, root *x509.Certificate) (bool, error) {
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})
	have, err := os.ReadFile(target)
	if err == nil && bytes.Equal(have, data) {
		return false, nil
	}
	created := errors.Is(err, fs.ErrNotExist)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("write %s: %w", target, err)
	}
	tmp := f.Name()
	werr := func() error {
		if err := f.Chmod(0o644); err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			return err
		}
		return f.Sync()
	}()
	if err := errors.Join(werr, f.Close()); err != nil {
		_ = os.Remove(tmp)
		return false, fmt.Errorf("write %s: %w", target, err)
	}
	if err := os.Rename(tmp, target); err != nil {
		_ = os.Remove(tmp)
		return false, fmt.Errorf("write %s: %w", target, err)
	}
	return created, nil
}

// runTrustTool runs the trust store's rebuild tool; a failure is one line
// ending with the tool's last line of output.
func runTrustTool(ctx context.Context, tool string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, trustTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, tool, args...).CombinedOutput()
	if err == nil {
		return nil
	}
	last := ""
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			last = l
		}
	}
	if last != "" {
		return fmt.Errorf("%s failed: %w: %s", filepath.Base(tool), err, last)
	}
	return fmt.Errorf("%s failed: %w", filepath.Base(tool), err)
}
