package embedca

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Several processes starting at once on a new folder end with one root:
// every caller gets the root that is on disk.
func TestLoadOrCreateRootConcurrent(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "embedded-ca")
	const n = 8
	roots := make([]*rootCA, n)
	errs := make([]error, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { roots[i], created[i], errs[i] = loadOrCreateRoot(dir, "ecdsa", time.Now()) })
	}
	wg.Wait()
	onDisk, err := readRootKey(filepath.Join(dir, rootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	winners := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !roots[i].cert.Equal(onDisk.cert) {
			t.Errorf("caller %d got a root that is not the one on disk", i)
		}
		if created[i] {
			winners++
		}
	}
	if winners != 1 {
		t.Errorf("%d callers report creating the root, want 1", winners)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only %s (no temporary files)", len(entries), rootKeyFile)
	}
}

// An expired root is replaced at the next start; a valid one is kept.
func TestLoadOrCreateRootExpiry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	first, created, err := loadOrCreateRoot(dir, "rsa", now)
	if err != nil || !created {
		t.Fatalf("first: created %t, %v", created, err)
	}
	again, created, err := loadOrCreateRoot(dir, "ecdsa", now.Add(rootLifetime/2))
	if err != nil || created || !again.cert.Equal(first.cert) {
		t.Fatalf("within its life: created %t, same %t, %v; want the stored root", created, again.cert.Equal(first.cert), err)
	}
	later, created, err := loadOrCreateRoot(dir, "ecdsa", first.cert.NotAfter.Add(time.Hour))
	if err != nil || !created || later.cert.Equal(first.cert) {
		t.Fatalf("after expiry: created %t, %v; want a new root", created, err)
	}
	if onDisk, err := readRootKey(filepath.Join(dir, rootKeyFile)); err != nil || !onDisk.cert.Equal(later.cert) {
		t.Fatalf("the new root is not on disk: %v", err)
	}
}
