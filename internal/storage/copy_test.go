package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/storage/etcdstore"
	"github.com/zoku/zoku/internal/storage/sealed"
	"github.com/zoku/zoku/internal/testkit/deploytest"
	"github.com/zoku/zoku/internal/testkit/etcdtest"
)

// copyFixture is a folder with what a zoku storage holds: a lego v4 tree
// (testdata/legov4), a v5 certificate set with a .pem, an archive, the
// embedded CA's state, deploy state, and node-local things Copy leaves
// out (a challenge answer, live/ copies, admin.token).
func copyFixture(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "legov4"))); err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, name := range []string{"a.example", "b.example", "gone.example"} {
		b := deploytest.Bundle(t, name, false)
		b.WritePEM = name == "a.example"
		if err := st.SaveCertificate(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.ArchiveCertificate(ctx, "gone.example", time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	for rel, v := range map[string]string{
		"embedded-ca/root.pem":         "root certificate",
		"embedded-ca/root-key.pem":     "root key",
		"deploy/state.json":            "{}\n",
		"challenges/http-01/tok":       "answer",
		"live/a.example/privkey.pem":   "plaintext copy",
		"admin.token":                  "token",
		"ondemand/rate/29000000":       "3",
		"ondemand/names/x.example.com": "2024-01-01T00:00:00Z",
	} {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(rel)), v)
	}
	return dir
}

func writeFile(t *testing.T, p, v string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tree reads every file under dir, by slash path.
func tree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			if d != nil && d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != dir {
				return fs.SkipDir
			}
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func openFiles(t *testing.T, dir string) *storage.Files {
	t.Helper()
	f, err := storage.OpenFiles(dir, storage.FilesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func openEtcd(t *testing.T, srv *etcdtest.Server, prefix string) *etcdstore.Store {
	t.Helper()
	s, err := etcdstore.Open(t.Context(), etcdstore.Options{Endpoints: []string{srv.HostPort()}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// wantCopied is the fixture without what Copy leaves out.
func wantCopied(t *testing.T, src map[string][]byte) map[string][]byte {
	t.Helper()
	want := maps.Clone(src)
	for k := range want {
		if storage.SkipInCopy(k) {
			delete(want, k)
		}
	}
	for _, k := range []string{"challenges/http-01/tok", "live/a.example/privkey.pem", "admin.token", "ondemand/rate/29000000"} {
		if _, ok := want[k]; ok {
			t.Fatalf("SkipInCopy keeps %s", k)
		}
	}
	return want
}

func sameTree(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
		t.Fatalf("%s: files\n%v\nwant\n%v", what, g, w)
	}
	for k, w := range want {
		if !bytes.Equal(got[k], w) {
			t.Errorf("%s: %s differs", what, k)
		}
	}
}

// TestCopyRoundTrip copies a folder (lego v4 tree included) to etcd and
// back to a new folder: the result is byte-identical, without the
// node-local keys; copying again changes nothing.
func TestCopyRoundTrip(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := t.Context()
	srcDir := copyFixture(t)
	src := tree(t, srcDir)
	want := wantCopied(t, src)
	et := openEtcd(t, srv, "roundtrip")

	rep, err := storage.Copy(ctx, openFiles(t, srcDir), et, storage.CopyOptions{})
	if err != nil {
		t.Fatalf("copy to etcd: %v", err)
	}
	if rep.Copied != len(want) || rep.Skipped != len(src)-len(want) || rep.Certificates != 3 || rep.Accounts != 1 || rep.Replaced+rep.Unchanged+rep.Removed != 0 {
		t.Errorf("report %+v; want %d copied, %d skipped, 3 certificate sets, 1 account", rep, len(want), len(src)-len(want))
	}
	keys, err := et.List(ctx, "")
	if err != nil || !slices.Equal(keys, slices.Sorted(maps.Keys(want))) {
		t.Errorf("etcd holds %v, %v", keys, err)
	}

	again, err := storage.Copy(ctx, openFiles(t, srcDir), et, storage.CopyOptions{})
	if err != nil || again.Unchanged != len(want) || again.Copied+again.Replaced != 0 {
		t.Errorf("second copy: %+v, %v; want everything unchanged", again, err)
	}

	backDir := filepath.Join(t.TempDir(), "back")
	if _, err := storage.Copy(ctx, et, openFiles(t, backDir), storage.CopyOptions{}); err != nil {
		t.Fatalf("copy back: %v", err)
	}
	sameTree(t, "folder → etcd → folder", tree(t, backDir), want)
	info, err := os.Stat(filepath.Join(backDir, "certificates", "a.example.key"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("copied key: %v, %v; want mode 0600", info, err)
	}
	// The lego v4 tree still reads as one.
	st, err := storage.Open(backDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.LoadCertificate(ctx, "*.example.test"); err != nil {
		t.Errorf("the copied lego v4 certificate: %v", err)
	}
}

// TestCopyConflicts: a destination value that differs stops the copy
// before anything is written; --overwrite replaces it, and removes files
// of the replaced set that the source's set lacks.
func TestCopyConflicts(t *testing.T) {
	ctx := t.Context()
	srcDir := copyFixture(t)
	dstDir := t.TempDir()
	dst := storage.New(openFiles(t, dstDir))
	other := deploytest.Bundle(t, "b.example", false) // another key and certificate
	other.WritePEM = true
	if err := dst.SaveCertificate(ctx, other); err != nil {
		t.Fatal(err)
	}
	before := tree(t, dstDir)

	var noted []string
	rep, err := storage.Copy(ctx, openFiles(t, srcDir), openFiles(t, dstDir), storage.CopyOptions{
		OnKey: func(k string, a storage.CopyAction) { noted = append(noted, a.String()+" "+k) },
	})
	if !errors.Is(err, storage.ErrCopyConflict) || !strings.Contains(err.Error(), "certificates/b.example.crt") || !strings.Contains(err.Error(), "nothing was copied") {
		t.Fatalf("copy onto a different set: %v", err)
	}
	if want := []string{"certificates/b.example.crt", "certificates/b.example.key"}; !slices.Equal(rep.Conflicts, want) {
		t.Errorf("conflicts %v, want %v", rep.Conflicts, want)
	}
	sameTree(t, "after a refused copy", tree(t, dstDir), before)
	if !slices.Contains(noted, "differs certificates/b.example.key") || !slices.Contains(noted, "skip admin.token") {
		t.Errorf("OnKey saw %v", noted)
	}

	jsonPath := filepath.Join(dstDir, "certificates", "b.example.json")
	jsonBefore, err := os.Stat(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = storage.Copy(ctx, openFiles(t, srcDir), openFiles(t, dstDir), storage.CopyOptions{Overwrite: true})
	if err != nil {
		t.Fatalf("copy with Overwrite: %v", err)
	}
	if rep.Replaced == 0 || rep.Removed != 1 {
		t.Errorf("report %+v; want replaced keys and the stale .pem removed", rep)
	}
	// The .json is written again (watchers notice a replaced set by it).
	if jsonAfter, err := os.Stat(jsonPath); err != nil || os.SameFile(jsonAfter, jsonBefore) {
		t.Errorf("the .json of the replaced set was not written again (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dstDir, "certificates", "b.example.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the stale .pem of the replaced set is still there: %v", err)
	}
	got, err := dst.LoadCertificate(ctx, "b.example")
	if err != nil {
		t.Fatalf("the replaced set: %v", err)
	}
	srcSet, _ := storage.New(openFiles(t, srcDir)).LoadCertificate(ctx, "b.example")
	if !bytes.Equal(got.Certificate, srcSet.Certificate) || !bytes.Equal(got.PrivateKey, srcSet.PrivateKey) {
		t.Error("the replaced set is not the source's")
	}
}

func TestCopyDryRun(t *testing.T) {
	ctx := t.Context()
	srcDir := copyFixture(t)
	dstDir := t.TempDir()
	rep, err := storage.Copy(ctx, openFiles(t, srcDir), openFiles(t, dstDir), storage.CopyOptions{DryRun: true})
	if err != nil || rep.Copied == 0 {
		t.Fatalf("dry run: %+v, %v", rep, err)
	}
	if got := tree(t, dstDir); len(got) != 0 {
		t.Errorf("a dry run wrote %v", slices.Sorted(maps.Keys(got)))
	}
}

// failingBackend is a destination without batches whose writes fail
// from the n-th on, as a copy killed midway.
type failingBackend struct {
	storage.Backend
	n int
}

func (f *failingBackend) Store(ctx context.Context, key string, value []byte) error {
	if f.n--; f.n < 0 {
		return errors.New("killed")
	}
	return f.Backend.Store(ctx, key, value)
}

// TestCopyInterrupted: whatever write a copy dies at, the destination's
// lego store lists only whole sets, and copying again completes it.
func TestCopyInterrupted(t *testing.T) {
	ctx := t.Context()
	srcDir := copyFixture(t)
	want := wantCopied(t, tree(t, srcDir))
	srcStore := storage.New(openFiles(t, srcDir))
	for n := range len(want) {
		dstDir := t.TempDir()
		_, err := storage.Copy(ctx, openFiles(t, srcDir), &failingBackend{Backend: openFiles(t, dstDir), n: n}, storage.CopyOptions{})
		if err == nil {
			t.Fatalf("write %d: the copy did not fail", n)
		}
		dst := storage.New(openFiles(t, dstDir))
		sets, err := dst.ListCertificates(ctx)
		if err != nil {
			t.Fatalf("write %d: the destination's sets do not read: %v", n, err)
		}
		for _, b := range sets {
			s, err := srcStore.LoadCertificate(ctx, b.Meta.ID)
			if err != nil || !bytes.Equal(s.PrivateKey, b.PrivateKey) || !bytes.Equal(s.Certificate, b.Certificate) {
				t.Errorf("write %d: set %s is listed but not whole", n, b.Meta.ID)
			}
		}
		if _, err := storage.Copy(ctx, openFiles(t, srcDir), openFiles(t, dstDir), storage.CopyOptions{}); err != nil {
			t.Fatalf("write %d: copying again: %v", n, err)
		}
		sameTree(t, "after an interrupted copy and a second one", tree(t, dstDir), want)
	}
}

// TestCopyEncrypted copies a plain folder into etcd sealing its keys,
// back out with the key into a plain folder (byte-identical), and shows
// that without the key the copy stops at the first sealed value.
func TestCopyEncrypted(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := t.Context()
	srcDir := copyFixture(t)
	want := wantCopied(t, tree(t, srcDir))
	raw := openEtcd(t, srv, "sealed")
	gen, _ := sealed.GenerateKey()
	k1, err := sealed.ParseKey(gen)
	if err != nil {
		t.Fatal(err)
	}
	gen2, _ := sealed.GenerateKey()
	k2, _ := sealed.ParseKey(gen2)

	to := sealed.Wrap(raw, sealed.Options{Key: k1})
	if _, err := storage.Copy(ctx, sealed.Wrap(openFiles(t, srcDir), sealed.Options{}), to, storage.CopyOptions{}); err != nil {
		t.Fatalf("plain → sealed: %v", err)
	}
	for k, v := range want {
		stored, err := raw.Load(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if sealed.IsSecret(k) != sealed.IsSealed(stored) {
			t.Errorf("%s in etcd: sealed %v, secret %v", k, sealed.IsSealed(stored), sealed.IsSecret(k))
		}
		if !sealed.IsSecret(k) && !bytes.Equal(stored, v) {
			t.Errorf("%s changed on the way into etcd", k)
		}
	}
	// Sealed anew, the values still compare equal: a second copy is a no-op.
	if rep, err := storage.Copy(ctx, sealed.Wrap(openFiles(t, srcDir), sealed.Options{}), to, storage.CopyOptions{}); err != nil || rep.Unchanged != len(want) {
		t.Errorf("second plain → sealed: %+v, %v", rep, err)
	}

	// Without the key: one clear error, nothing written.
	noKeyDir := filepath.Join(t.TempDir(), "nokey")
	_, err = storage.Copy(ctx, sealed.Wrap(raw, sealed.Options{}), openFiles(t, noKeyDir), storage.CopyOptions{})
	if !errors.Is(err, sealed.ErrNoKey) || !strings.Contains(err.Error(), "is encrypted with storage key "+k1.ID()) {
		t.Errorf("sealed → plain without the key: %v", err)
	}
	if got := tree(t, noKeyDir); len(got) != 0 {
		t.Errorf("a failed copy wrote %v", slices.Sorted(maps.Keys(got)))
	}

	// Re-keyed into another prefix, then decrypted: the original bytes.
	rekeyed := openEtcd(t, srv, "rekeyed")
	if _, err := storage.Copy(ctx, sealed.Wrap(raw, sealed.Options{Key: k1}), sealed.Wrap(rekeyed, sealed.Options{Key: k2}), storage.CopyOptions{}); err != nil {
		t.Fatalf("sealed → sealed with another key: %v", err)
	}
	if v, _ := rekeyed.Load(ctx, "certificates/a.example.key"); !bytes.Contains(v, []byte(k2.ID())) {
		t.Error("the re-keyed value does not name the new key")
	}
	plainDir := filepath.Join(t.TempDir(), "plain")
	if _, err := storage.Copy(ctx, sealed.Wrap(rekeyed, sealed.Options{Key: k2}), openFiles(t, plainDir), storage.CopyOptions{}); err != nil {
		t.Fatalf("sealed → plain: %v", err)
	}
	sameTree(t, "plain → sealed → re-keyed → plain", tree(t, plainDir), want)
}
