package storage_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/storage/storagetest"
)

// sharedDir gives every backend opened within one test the same folder,
// as two processes on one --path.
func sharedDir() func(t *testing.T) string {
	var mu sync.Mutex
	dirs := map[*testing.T]string{}
	return func(t *testing.T) string {
		mu.Lock()
		defer mu.Unlock()
		if d, ok := dirs[t]; ok {
			return d
		}
		d := t.TempDir()
		dirs[t] = d
		return d
	}
}

func TestFilesConformance(t *testing.T) {
	dir := sharedDir()
	storagetest.Run(t, storagetest.Options{
		Open: func(t *testing.T) storage.Backend {
			f, err := storage.OpenFiles(dir(t), storage.FilesOptions{PollInterval: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			return f
		},
	})
}

// TestFilesLockOfKilledProcess takes a lock in a child process, kills it
// with SIGKILL, and takes the lock at once: a crashed holder leaves no
// lock behind.
func TestFilesLockOfKilledProcess(t *testing.T) {
	if os.Getenv("ZOKU_LOCK_CHILD") != "" {
		holdLockForever()
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFilesLockOfKilledProcess$")
	cmd.Env = append(os.Environ(), "ZOKU_LOCK_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child prints one line once it holds the lock.
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	if !strings.Contains(string(buf[:n]), "locked") {
		_ = cmd.Process.Kill()
		t.Fatalf("child did not take the lock: %q", buf[:n])
	}
	f, err := storage.OpenFiles(dir, storage.FilesOptions{Holder: "parent"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := f.TryLock(ctx, "cert/x"); !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("TryLock while the child holds it: got %v, want ErrLocked", err)
	}
	if h, _ := f.LockHolder(ctx, "cert/x"); h != "child" {
		t.Errorf("holder: %q, want child", h)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	l, err := f.TryLock(ctx, "cert/x")
	if err != nil {
		t.Fatalf("TryLock after the holder was killed: %v", err)
	}
	if l.Token() < 2 {
		t.Errorf("token after a crashed holder: %d, want it above the crashed holder's", l.Token())
	}
	_ = l.Unlock(ctx)
}

func holdLockForever() {
	f, err := storage.OpenFiles(os.Getenv("ZOKU_LOCK_CHILD"), storage.FilesOptions{Holder: "child"})
	if err != nil {
		os.Exit(3)
	}
	if _, err := f.Lock(context.Background(), "cert/x"); err != nil {
		os.Exit(4)
	}
	os.Stdout.WriteString("locked\n")
	select {} // until killed
}

// TestFilesRemovesStaleTemps: a kill -9 mid-write leaves a temporary file;
// the next start removes it once it is old, and leaves fresh ones alone.
func TestFilesRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certificates")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(certs, ".a.example.crt.tmp-123")
	fresh := filepath.Join(certs, ".b.example.crt.tmp-456")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	f, err := storage.OpenFiles(dir, storage.FilesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	<-f.Swept()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh temporary file (a write in progress) was removed: %v", err)
	}
}

// TestRemoveEmptyFolders: only the empty folders directly under the
// prefix that are a minute old go; a fresh one, or one with a file, a
// hidden file or a folder in it, stays.
func TestRemoveEmptyFolders(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	f, err := storage.OpenFiles(root, storage.FilesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Store(ctx, "nodes/full/status.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := f.Store(ctx, "nodes/emptied/status.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(ctx, "nodes/emptied/status.json"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"nodes/empty", "nodes/hidden", "nodes/nested/inner"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "nodes/hidden/.lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Fresh folders stay: a writer may be about to fill them.
	if n, err := f.RemoveEmptyFolders(ctx, "nodes"); err != nil || n != 0 {
		t.Fatalf("RemoveEmptyFolders of fresh folders = %d, %v; want 0", n, err)
	}
	old := time.Now().Add(-2 * time.Minute)
	for _, d := range []string{"full", "emptied", "empty", "hidden", "nested"} {
		if err := os.Chtimes(filepath.Join(root, "nodes", d), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "nodes/fresh"), 0o700); err != nil {
		t.Fatal(err)
	}
	n, err := f.RemoveEmptyFolders(ctx, "nodes")
	if err != nil || n != 2 {
		t.Fatalf("RemoveEmptyFolders = %d, %v; want 2 (emptied, empty)", n, err)
	}
	for d, want := range map[string]bool{"full": true, "emptied": false, "empty": false, "hidden": true, "nested": true, "fresh": true} {
		_, err := os.Stat(filepath.Join(root, "nodes", d))
		if got := err == nil; got != want {
			t.Errorf("nodes/%s there: %v, want %v", d, got, want)
		}
	}
	if n, err := f.RemoveEmptyFolders(ctx, "missing"); n != 0 || err != nil {
		t.Errorf("a missing prefix: %d, %v", n, err)
	}
	if _, err := f.RemoveEmptyFolders(ctx, "../outside"); err == nil {
		t.Error("a prefix outside the store was taken")
	}
}

// TestStoreBesideRemoveEmptyFolders: a process storing into new folders
// while another removes empty folders in a loop (the fleet of a second
// node, at its worst) never fails: a fresh folder is not taken.
func TestStoreBesideRemoveEmptyFolders(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	writer, err := storage.OpenFiles(root, storage.FilesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	remover, err := storage.OpenFiles(root, storage.FilesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// An old empty folder, which the remover must take meanwhile.
	stale := filepath.Join(root, "nodes", "stale")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	removed := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-done:
				removed <- n
				return
			default:
			}
			r, _ := remover.RemoveEmptyFolders(ctx, "nodes")
			n += r
		}
	}()
	for i := range 300 {
		key := fmt.Sprintf("nodes/n%d/status.json", i)
		if err := writer.Store(ctx, key, []byte("{}")); err != nil {
			close(done)
			<-removed
			t.Fatalf("store %d: %v", i, err)
		}
		if err := writer.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if n := <-removed; n != 1 {
		t.Errorf("%d folders removed while stores ran, want 1 (the stale one)", n)
	}
}
