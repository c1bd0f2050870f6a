package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// locksDir holds the lock files of the file backend; it is hidden, so
// listings and lego leave it alone.
const locksDir = ".locks"

// lockRecord is the content of a lock file: who holds (or last held) the
// lock, and the fencing token of that holder.
type lockRecord struct {
	Token    int64     `json:"token"`
	Holder   string    `json:"holder"`
	Acquired time.Time `json:"acquired"`
	Released bool      `json:"released,omitempty"`
}

// fileLease is a held flock(2) lock.
type fileLease struct {
	files *Files
	name  string
	token int64
	lost  chan struct{} // never closed: a flock is lost only with the process

	mu   sync.Mutex
	file *os.File // nil once unlocked
}

var _ Lease = (*fileLease)(nil)

func (l *fileLease) Name() string          { return l.name }
func (l *fileLease) Token() int64          { return l.token }
func (l *fileLease) Lost() <-chan struct{} { return l.lost }

// Unlock records the release and drops the flock.
func (l *fileLease) Unlock(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil {
		return nil
	}
	rec := lockRecord{Token: l.token, Holder: l.files.holder, Acquired: l.files.now().UTC(), Released: true}
	werr := writeLockRecord(l.file, rec)
	uerr := syscall.Flock(int(l.file.Fd()), syscall.LOCK_UN)
	cerr := l.file.Close()
	l.file = nil
	if err := errors.Join(werr, uerr, cerr); err != nil {
		return fmt.Errorf("storage: unlock %s: %w", l.name, err)
	}
	return nil
}

func (l *fileLease) held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.file != nil
}

// lockPath maps a lock name onto its file; names are free-form, so every
// character outside [A-Za-z0-9._-] is escaped.
func (f *Files) lockPath(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "%%%02x", r)
		}
	}
	s := b.String()
	if strings.HasPrefix(s, ".") {
		s = "%2e" + s[1:]
	}
	return filepath.Join(f.root, locksDir, s+".lock")
}

// Lock waits for the lock, polling with a growing, jittered interval
// (10 ms to 500 ms) until ctx ends.
func (f *Files) Lock(ctx context.Context, name string) (Lease, error) {
	wait := 10 * time.Millisecond
	for {
		l, err := f.TryLock(ctx, name)
		if !errors.Is(err, ErrLocked) {
			return l, err
		}
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("storage: waiting for lock %s: %w", name, ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}

// TryLock takes the lock if no process holds it.
func (f *Files) TryLock(ctx context.Context, name string) (Lease, error) {
	if name == "" {
		return nil, errors.New("storage: empty lock name")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := f.lockPath(name)
	if err := mkdirAll(filepath.Dir(p)); err != nil {
		return nil, err
	}
	file, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("storage: open lock %s: %w", name, err)
	}
	if err := syscall.Flock(int(file.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = file.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, name)
		}
		return nil, fmt.Errorf("storage: lock %s: %w", name, err)
	}
	// Held: the record is ours to read and rewrite. The file is rewritten
	// in place, never renamed, since a flock belongs to the inode.
	prev, _ := readLockRecord(file)
	rec := lockRecord{Token: prev.Token + 1, Holder: f.holder, Acquired: f.now().UTC()}
	if err := writeLockRecord(file, rec); err != nil {
		_ = syscall.Flock(int(file.Fd()), syscall.LOCK_UN)
		_ = file.Close()
		return nil, fmt.Errorf("storage: lock %s: %w", name, err)
	}
	return &fileLease{files: f, name: name, token: rec.Token, lost: make(chan struct{}), file: file}, nil
}

// LockHolder returns who holds the lock, "" when nobody does.
func (f *Files) LockHolder(ctx context.Context, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	file, err := os.Open(f.lockPath(name))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("storage: lock %s: %w", name, err)
	}
	defer file.Close()
	// A shared, non-blocking probe: it succeeds only when nobody holds the
	// lock exclusively (a crashed holder's lock is gone with it).
	if err := syscall.Flock(int(file.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		_ = syscall.Flock(int(file.Fd()), syscall.LOCK_UN)
		return "", nil
	}
	rec, err := readLockRecord(file)
	if err != nil {
		return "unknown", nil
	}
	return rec.Holder, nil
}

// checkFence refuses a write whose context carries a lease of this
// backend that was unlocked.
func (f *Files) checkFence(ctx context.Context) error {
	l := FenceFrom(ctx)
	if l == nil {
		return nil
	}
	fl, ok := l.(*fileLease)
	if !ok || fl.files != f {
		return fmt.Errorf("storage: a write fenced by a lock of another backend: %w", ErrFenced)
	}
	if !fl.held() {
		return fmt.Errorf("%w (lock %s was released)", ErrFenced, fl.name)
	}
	return nil
}

func readLockRecord(file *os.File) (lockRecord, error) {
	var rec lockRecord
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return rec, err
	}
	raw, err := io.ReadAll(io.LimitReader(file, 4096))
	if err != nil {
		return rec, err
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return rec, nil
	}
	return rec, json.Unmarshal(raw, &rec)
}

// lockRecordSize is the fixed size of a lock record: it is rewritten in
// place with one write of the whole record, never truncated first, so a
// crash mid-write cannot leave an empty record (and reset the token).
const lockRecordSize = 512

func writeLockRecord(file *os.File, rec lockRecord) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if len(raw) >= lockRecordSize {
		return errors.New("lock record too long; use a shorter holder name")
	}
	buf := bytes.Repeat([]byte{' '}, lockRecordSize)
	copy(buf, raw)
	buf[lockRecordSize-1] = '\n'
	if _, err := file.WriteAt(buf, 0); err != nil {
		return err
	}
	return file.Sync()
}
