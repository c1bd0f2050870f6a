package cli

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/storage/etcdstore"
	"github.com/zoku/zoku/internal/storage/sealed"
	"github.com/zoku/zoku/internal/testkit/deploytest"
	"github.com/zoku/zoku/internal/testkit/etcdtest"
	"github.com/zoku/zoku/internal/testkit/need"
)

// storageFixture is the lego v4 test folder plus a v5 set with a .pem and
// a challenge answer (which copy leaves behind).
func storageFixture(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	must(t, os.CopyFS(dir, os.DirFS(filepath.Join("..", "storage", "testdata", "legov4"))))
	st, err := storage.Open(dir)
	must(t, err)
	b := deploytest.Bundle(t, "a.example", false)
	b.WritePEM = true
	must(t, st.SaveCertificate(t.Context(), b))
	must(t, os.MkdirAll(filepath.Join(dir, "challenges", "http-01"), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "challenges", "http-01", "tok"), []byte("answer"), 0o600))
	return dir
}

// files reads every file under dir, by slash path, without hidden ones
// (locks) and challenge answers.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(d.Name(), ".") && p != dir || strings.HasPrefix(rel, "challenges") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = string(b)
		}
		return nil
	})
	must(t, err)
	return out
}

func sameFiles(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d files, want %d", what, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s differs or is missing", what, k)
		}
	}
}

// noSecrets fails when output shows key material.
func noSecrets(t *testing.T, what string, r result) {
	t.Helper()
	for _, s := range []string{"PRIVATE KEY", "ZOKU SEALED VALUE"} {
		if strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("%s shows %q:\n%s%s", what, s, r.stdout, r.stderr)
		}
	}
}

// TestStorageCopyFolderEtcdFolder: folder → etcd → folder is byte for
// byte, a second copy changes nothing, a dry run writes nothing, and a
// different value at the destination stops the copy with one line.
func TestStorageCopyFolderEtcdFolder(t *testing.T) {
	srv := etcdtest.Start(t)
	src := storageFixture(t)
	url := "etcd://" + srv.HostPort() + "/copy"

	dry := mustZoku(t, "storage", "copy", "--from", src, "--to", url, "--dry-run")
	if !strings.Contains(dry.stdout, "would have copied 10 keys (2 certificate sets, 1 account)") {
		t.Errorf("dry run said:\n%s", dry.stdout)
	}
	r := mustZoku(t, "storage", "copy", "--from", src, "--to", url, "-v")
	noSecrets(t, "copy -v", r)
	for _, want := range []string{"copy    certificates/a.example.key", "skip    challenges/http-01/tok", "copied 10 keys (2 certificate sets, 1 account)", "1 left out"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("copy output lacks %q:\n%s", want, r.stdout)
		}
	}
	if again := mustZoku(t, "storage", "copy", "--from", src, "--to", url); !strings.Contains(again.stdout, "copied 0 keys") || !strings.Contains(again.stdout, "10 unchanged") {
		t.Errorf("second copy:\n%s", again.stdout)
	}
	back := filepath.Join(t.TempDir(), "back")
	mustZoku(t, "storage", "copy", "--from", url, "--to", "file:"+back)
	sameFiles(t, "folder → etcd → folder", files(t, back), files(t, src))
	checkModes(t, back)

	// A different key at the destination: refused, nothing written.
	st, err := storage.Open(back)
	must(t, err)
	other := deploytest.Bundle(t, "a.example", false)
	must(t, st.SaveCertificate(t.Context(), other))
	before := files(t, back)
	bad := zoku(t, "", false, "storage", "copy", "--from", src, "--to", back)
	if bad.code != 1 || !strings.Contains(bad.stderr, "keys differ (certificates/a.example.crt, certificates/a.example.key") ||
		!strings.Contains(bad.stderr, "nothing was copied; add --overwrite") || strings.Count(bad.stderr, "\n") != 1 {
		t.Errorf("copy onto a different set: exit %d, stderr %q", bad.code, bad.stderr)
	}
	sameFiles(t, "after a refused copy", files(t, back), before)
	mustZoku(t, "storage", "copy", "--from", src, "--to", back, "--overwrite")
	sameFiles(t, "after --overwrite", files(t, back), files(t, src))
}

// TestStorageEncryptedRoundTrip: a folder copied with --to-key has its
// private keys sealed (ls shows the key ID), zoku's commands read it with
// ZOKU_STORAGE_KEY_FILE and fail with one line without it, and copying it
// back with --from-key gives the original bytes.
func TestStorageEncryptedRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src := storageFixture(t)
	keyFile := filepath.Join(dir, "storage.key")
	r := mustZoku(t, "storage", "keygen", keyFile)
	k, err := sealed.LoadKeyFile(keyFile)
	must(t, err)
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 || !strings.Contains(r.stdout, k.ID()) {
		t.Fatalf("keygen: %v %v\n%s", fi, err, r.stdout)
	}
	if again := zoku(t, "", false, "storage", "keygen", keyFile); again.code != 1 || !strings.Contains(again.stderr, "never replaces a key file") {
		t.Errorf("keygen over an existing file: %d %q", again.code, again.stderr)
	}

	enc := filepath.Join(dir, "enc")
	r = mustZoku(t, "storage", "copy", "--from", src, "--to", enc, "--to-key", keyFile)
	if !strings.Contains(r.stdout, "private keys encrypted with key "+k.ID()) {
		t.Errorf("copy --to-key said:\n%s", r.stdout)
	}
	raw, err := os.ReadFile(filepath.Join(enc, "certificates", "a.example.key"))
	must(t, err)
	if !sealed.IsSealed(raw) {
		t.Fatal("certificates/a.example.key is not encrypted")
	}
	ls := mustZoku(t, "storage", "ls", "--path", enc, "certificates")
	if !strings.Contains(ls.stdout, "certificates/a.example.key") || strings.Count(ls.stdout, "key "+k.ID()) != 3 { // .key, .pem, v4 .key
		t.Errorf("storage ls:\n%s", ls.stdout)
	}
	noSecrets(t, "storage ls", ls)
	plainLs := mustZoku(t, "storage", "ls", "--path", src, "certificates")
	if !strings.Contains(plainLs.stdout, "none") {
		t.Errorf("storage ls of a plain folder does not flag its keys as unencrypted:\n%s", plainLs.stdout)
	}

	// zoku list: one line without the key, the list with it.
	bad := zoku(t, "", false, "list", "--path", enc)
	if bad.code != 1 || !strings.Contains(bad.stderr, "is encrypted with storage key "+k.ID()) || strings.Count(bad.stderr, "\n") != 1 {
		t.Errorf("zoku list without the key: %d %q", bad.code, bad.stderr)
	}
	t.Setenv(envStorageKeyFile, keyFile)
	if l := mustZoku(t, "list", "--path", enc); !strings.Contains(l.stdout, "a.example") {
		t.Errorf("zoku list with %s:\n%s", envStorageKeyFile, l.stdout)
	}
	t.Setenv(envStorageKey, "also set")
	if both := zoku(t, "", false, "list", "--path", enc); both.code != 1 || !strings.Contains(both.stderr, "both ZOKU_STORAGE_KEY_FILE and ZOKU_STORAGE_KEY are set") {
		t.Errorf("zoku list with both variables: %d %q", both.code, both.stderr)
	}
	os.Unsetenv(envStorageKeyFile)
	os.Unsetenv(envStorageKey)

	// Without --from-key, values go as they are; with it, decrypted.
	asIs := filepath.Join(dir, "as-is")
	mustZoku(t, "storage", "copy", "--from", enc, "--to", asIs)
	sameFiles(t, "copy without keys", files(t, asIs), files(t, enc))
	t.Setenv("ZOKU_TEST_KEY", strings.TrimSpace(readFile(t, keyFile)))
	plain := filepath.Join(dir, "plain")
	r = mustZoku(t, "storage", "copy", "--from", enc, "--from-key", "env:ZOKU_TEST_KEY", "--to", plain)
	if !strings.Contains(r.stdout, "the destination holds them unencrypted") {
		t.Errorf("decrypting copy said:\n%s", r.stdout)
	}
	sameFiles(t, "plain → encrypted → plain", files(t, plain), files(t, src))

	// A wrong key: one line naming the key IDs, nothing written.
	other := filepath.Join(dir, "other.key")
	mustZoku(t, "storage", "keygen", other)
	wrongDir := filepath.Join(dir, "wrong")
	wrong := zoku(t, "", false, "storage", "copy", "--from", enc, "--from-key", other, "--to", wrongDir)
	if wrong.code != 1 || !strings.Contains(wrong.stderr, "is encrypted with storage key "+k.ID()+", but the key configured is") {
		t.Errorf("copy with the wrong key: %d %q", wrong.code, wrong.stderr)
	}
	if got := files(t, wrongDir); len(got) != 0 {
		t.Errorf("a failed copy wrote %d files", len(got))
	}
}

// TestStorageCopyBadInput: every wrong command line is one line and exit
// 1 or 2, and never creates the destination.
func TestStorageCopyBadInput(t *testing.T) {
	dir := t.TempDir()
	src := storageFixture(t)
	short := filepath.Join(dir, "short.key")
	must(t, os.WriteFile(short, []byte(base64.StdEncoding.EncodeToString(make([]byte, 16))), 0o600))
	dst := filepath.Join(dir, "dst")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no --to", []string{"--from", src}, "give --from and --to"},
		{"same storage", []string{"--from", src, "--to", "file:" + src + "/"}, "--from and --to name the same storage"},
		{"same etcd storage", []string{"--from", "etcd://u:Secret-9@127.0.0.1:1/p", "--to", "etcds://u:Secret-9@127.0.0.1:1/p/"}, "--from and --to name the same etcd storage"},
		{"short key", []string{"--from", src, "--to", dst, "--to-key", short}, "--to-key: sealed: the storage key decodes (base64) to 16 bytes; a key is 32 bytes"},
		{"missing key file", []string{"--from", src, "--to", dst, "--to-key", filepath.Join(dir, "none")}, "cannot read the storage key file"},
		{"unset variable", []string{"--from", src, "--to", dst, "--to-key", "env:ZOKU_NO_SUCH_VARIABLE"}, "environment variable ZOKU_NO_SUCH_VARIABLE is not set"},
		{"bad etcd URL", []string{"--from", src, "--to", "etcd://nohostport/x"}, `--to: etcd: endpoint "nohostport" of the storage URL is not host:port`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := zoku(t, "", false, append([]string{"storage", "copy"}, tc.args...)...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 || strings.Contains(r.stderr, "Secret-9") {
				t.Errorf("exit %d, stderr %q; want one line containing %q", r.code, r.stderr, tc.want)
			}
			if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the destination was created")
			}
		})
	}
	if r := zoku(t, "", false, "storage"); r.code != 2 || !strings.Contains(r.stdout, "zoku storage copy") {
		t.Errorf("zoku storage without a command: %d %q", r.code, r.stdout)
	}
	if r := zoku(t, "", false, "storage", "move"); r.code != 1 || !strings.Contains(r.stderr, `unknown storage command "move"`) {
		t.Errorf("zoku storage move: %d %q", r.code, r.stderr)
	}
}

// TestStorageConfigEtcdTLSAuthEncrypted: the storage section of a config
// reaches an etcd that requires TLS client certificates and a user, and
// seals private keys: zoku storage copy --config fills it from a folder,
// storage ls --config lists it, and openStoreWith reads it as zoku run
// does.
func TestStorageConfigEtcdTLSAuthEncrypted(t *testing.T) {
	srv, tf := etcdtest.StartTLS(t)
	enableEtcdAuth(t, srv, tf, "zoku/", "etcd-Password-31")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "storage.key")
	mustZoku(t, "storage", "keygen", keyFile)
	t.Setenv("ZOKU_TEST_ETCD_PASSWORD", "etcd-Password-31")
	cfgPath := filepath.Join(dir, "zoku.yaml")
	must(t, os.WriteFile(cfgPath, []byte(`entryPoints:
  web:
    address: "127.0.0.1:0"
certificates:
  acme:
    storage: etcds://`+srv.HostPort()+`/zoku
storage:
  etcd:
    caFile: `+tf.CA+`
    certFile: `+tf.ClientCert+`
    keyFile: `+tf.ClientKey+`
    username: zoku
    password: ${ZOKU_TEST_ETCD_PASSWORD}
    dialTimeout: 3s
  encryption:
    keyFile: `+keyFile+`
`), 0o600))
	src := storageFixture(t)
	r := mustZoku(t, "storage", "copy", "--config", cfgPath, "--from", src)
	if !strings.Contains(r.stdout, "→ etcds://"+srv.HostPort()+"/zoku (private keys encrypted with key") {
		t.Errorf("copy --config said:\n%s", r.stdout)
	}
	noSecrets(t, "copy --config", r)
	if strings.Contains(r.stdout+r.stderr, "etcd-Password-31") {
		t.Error("the output shows the etcd password")
	}
	ls := mustZoku(t, "storage", "ls", "--config", cfgPath)
	if !strings.Contains(ls.stdout, "certificates/a.example.key") || !strings.Contains(ls.stdout, "key ") {
		t.Errorf("storage ls --config:\n%s", ls.stdout)
	}

	cfg, err := config.Load(cfgPath, os.Getenv)
	must(t, err)
	ctx := t.Context()
	st, closer, err := openStoreWith(ctx, cfg.Certificates.ACME.Storage, "certificates.acme.storage", &cfg.Storage, nil)
	must(t, err)
	defer closer.Close()
	b, err := st.LoadCertificate(ctx, "a.example")
	if err != nil || !bytes.Contains(b.PrivateKey, []byte("PRIVATE KEY")) {
		t.Fatalf("LoadCertificate through the config's storage: %v", err)
	}
	raw, err := storage.Underlying(st.Backend()).Load(ctx, "certificates/a.example.key")
	if err != nil || !sealed.IsSealed(raw) {
		t.Errorf("the key in etcd is not sealed: %v", err)
	}

	// A wrong password: one line, without the password.
	bad := *cfg.Storage.Etcd
	bad.Password = "Not-The-Password"
	_, _, err = openStoreWith(ctx, cfg.Certificates.ACME.Storage, "certificates.acme.storage", &config.Storage{Etcd: &bad}, nil)
	if err == nil || !strings.Contains(err.Error(), `certificates.acme.storage: etcd: connect to `+srv.HostPort()+`: authentication failed for user "zoku"`) || strings.Contains(err.Error(), "Not-The-Password") {
		t.Errorf("wrong password: %v", err)
	}
}

// enableEtcdAuth turns on etcd's auth over TLS: a root user, and "zoku"
// with readwrite under prefix.
func enableEtcdAuth(t *testing.T, srv *etcdtest.Server, tf *etcdtest.TLSFiles, prefix, password string) {
	t.Helper()
	tc, err := etcdstore.ClientTLS(etcdstore.TLSFiles{CAFile: tf.CA, CertFile: tf.ClientCert, KeyFile: tf.ClientKey})
	must(t, err)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.HostPort()}, TLS: tc, DialTimeout: 5 * time.Second})
	must(t, err)
	defer cli.Close()
	ctx := t.Context()
	for i, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "root-Password-1"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "zoku"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "zoku", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "zoku", password); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "zoku", "zoku"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("enable auth, step %d: %v", i, err)
		}
	}
}

// TestRunWithEncryptedStorage: `zoku run` with storage.encryption orders
// the quickstart's certificate with its key sealed on disk, serves it,
// and on the next run reads it back from storage.
func TestRunWithEncryptedStorage(t *testing.T) {
	curl := need.Binary(t, "curl", "apt-get install -y curl")
	dir := t.TempDir()
	q := newQuickstart(t, dir)
	keyFile := filepath.Join(dir, "storage.key")
	mustZoku(t, "storage", "keygen", keyFile)
	f, err := os.OpenFile(q.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteString("storage:\n  encryption:\n    keyFile: " + keyFile + "\n")
	must(t, errors.Join(err, f.Close()))

	if kind, _ := q.run(t, curl); kind != certmgr.EventObtained {
		t.Fatalf("first run: %q, want %q", kind, certmgr.EventObtained)
	}
	keys, err := filepath.Glob(filepath.Join(q.storage, "certificates", "*.key"))
	must(t, err)
	accountKeys, err := filepath.Glob(filepath.Join(q.storage, "accounts", "*", "*", "*.key"))
	must(t, err)
	if len(keys) == 0 || len(accountKeys) == 0 {
		t.Fatalf("no keys stored: %v %v", keys, accountKeys)
	}
	for _, p := range append(keys, accountKeys...) {
		if raw, err := os.ReadFile(p); err != nil || !sealed.IsSealed(raw) {
			t.Errorf("%s is not encrypted at rest (%v)", p, err)
		}
	}
	if kind, _ := q.run(t, curl); kind != certmgr.EventLoaded {
		t.Fatalf("second run: %q, want the stored certificate (%q)", kind, certmgr.EventLoaded)
	}
}

// TestObtainWithStorageKey: with ZOKU_STORAGE_KEY_FILE set, zoku obtain
// seals the certificate's and the account's keys, and zoku renew reads
// them back (nothing is due, so it says so).
func TestObtainWithStorageKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".zoku")
	keyFile := filepath.Join(t.TempDir(), "storage.key")
	mustZoku(t, "storage", "keygen", keyFile)
	t.Setenv(envStorageKeyFile, keyFile)
	base := []string{"--server", "embedded", "--accept-tos", "--email", "you@example.test", "--http", "--http.port", port(t), "-d", "a.example.test", "--path", dir}
	mustZoku(t, append([]string{"obtain"}, base...)...)
	for _, pattern := range []string{"certificates/*.key", "accounts/*/*/*.key"} {
		keys, err := filepath.Glob(filepath.Join(dir, filepath.FromSlash(pattern)))
		must(t, err)
		if len(keys) == 0 {
			t.Fatalf("no %s", pattern)
		}
		for _, p := range keys {
			if raw, err := os.ReadFile(p); err != nil || !sealed.IsSealed(raw) {
				t.Errorf("%s is not encrypted at rest (%v)", p, err)
			}
		}
	}
	checkModes(t, dir)
	mustZoku(t, append([]string{"renew"}, base...)...)
}
