package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// staleTempAge is how old a temporary file must be before OpenFiles removes
// it: a write takes milliseconds, so an older one was left by a process that
// died mid-write (kill -9, power loss).
const staleTempAge = 10 * time.Minute

// Files is the file backend: every key is a file under one folder, which
// is what keeps lego's layout. Values are written to a hidden temporary
// file in the target folder, fsynced, renamed into place, and the folder is
// fsynced; files are created 0600 and folders 0700. Locks are flock(2)
// locks on files under .locks/, which the kernel releases when the holder
// dies, so a crashed process never leaves a lock behind. Create it with
// [OpenFiles].
type Files struct {
	root   string
	holder string
	// pollInterval is how often Watch also lists the watched folder, for
	// file systems where change notifications do not arrive (NFS).
	pollInterval time.Duration
	now          func() time.Time
	// swept is closed once the start-up sweep of stale temporary files
	// is done.
	swept chan struct{}
}

var (
	_ Backend       = (*Files)(nil)
	_ Batcher       = (*Files)(nil)
	_ Watcher       = (*Files)(nil)
	_ LockInspector = (*Files)(nil)
	_ Pather        = (*Files)(nil)
)

// FilesOptions tune OpenFiles; the zero value is ready to use.
type FilesOptions struct {
	// Holder names this process in lock files (zoku list, the admin API);
	// empty means "<hostname>:<pid>".
	Holder string
	// PollInterval is how often Watch also scans the folder; zero means
	// 30 s.
	PollInterval time.Duration
}

// OpenFiles opens the file backend at root, creating the folder (0700) if
// it is missing, proves it is writable, and removes temporary files left by
// a process that died mid-write. The error names the path and the fix.
func OpenFiles(root string, opts FilesOptions) (*Files, error) {
	if root == "" {
		return nil, errors.New("storage: empty folder name; name a writable folder")
	}
	root = filepath.Clean(root)
	if err := probeWritable(root); err != nil {
		return nil, fmt.Errorf("storage: folder %q is not writable (%w); choose another folder or fix its permissions", root, err)
	}
	if opts.Holder == "" {
		opts.Holder = DefaultHolder()
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 30 * time.Second
	}
	f := &Files{root: root, holder: opts.Holder, pollInterval: opts.PollInterval, now: time.Now, swept: make(chan struct{})}
	// In the background: a store of 100,000 certificates holds 400,000
	// files, and a start has better things to do than walk them first.
	// Only files no write has touched for staleTempAge go, so the sweep
	// and this process's own writes never meet.
	go func() {
		defer close(f.swept)
		f.removeStaleTemps()
	}()
	return f, nil
}

// Swept returns a channel closed once the background sweep OpenFiles
// starts (of temporary files left by a process that died mid-write) is
// done.
func (f *Files) Swept() <-chan struct{} { return f.swept }

// DefaultHolder is "<hostname>:<pid>", the name a process gives itself in
// locks unless told otherwise.
func DefaultHolder() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// probeWritable creates root if needed and creates and removes a temp file in it.
func probeWritable(root string) error {
	if info, err := os.Stat(root); err == nil && !info.IsDir() {
		return errors.New("it is a file, not a folder")
	}
	if err := mkdirAll(root); err != nil {
		return errors.Unwrap(err)
	}
	f, err := os.CreateTemp(root, ".zoku-probe-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	name := f.Name()
	return errors.Join(f.Close(), os.Remove(name))
}

// Root is the folder the backend was opened on (cleaned).
func (f *Files) Root() string { return f.root }

// String is "file:<root>".
func (f *Files) String() string { return "file:" + f.root }

// Path returns the file that holds key.
func (f *Files) Path(key string) string {
	return filepath.Join(f.root, filepath.FromSlash(key))
}

// Load reads a value.
func (f *Files) Load(ctx context.Context, key string) ([]byte, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(f.Path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, NotExist(key)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: read %s: %w", key, err)
	}
	return data, nil
}

// Stat describes a value.
func (f *Files) Stat(ctx context.Context, key string) (KeyInfo, error) {
	if err := CheckKey(key); err != nil {
		return KeyInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return KeyInfo{}, err
	}
	info, err := os.Stat(f.Path(key))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !info.Mode().IsRegular()) {
		return KeyInfo{}, NotExist(key)
	}
	if err != nil {
		return KeyInfo{}, fmt.Errorf("storage: stat %s: %w", key, err)
	}
	return KeyInfo{Key: key, Size: info.Size(), Modified: info.ModTime(), Revision: info.ModTime().UnixNano()}, nil
}

// Store writes a value atomically.
func (f *Files) Store(ctx context.Context, key string, value []byte) error {
	return f.StoreAll(ctx, []Op{{Key: key, Value: value}})
}

// Delete removes a value; a missing one is not an error.
func (f *Files) Delete(ctx context.Context, key string) error {
	return f.StoreAll(ctx, []Op{{Key: key, Delete: true}})
}

// StoreAll writes every value to a temporary file first; only when all are
// written and fsynced does it rename (or remove) them in the order given,
// then fsync the folders. A failure before the first rename leaves nothing
// changed.
func (f *Files) StoreAll(ctx context.Context, ops []Op) (err error) {
	for _, op := range ops {
		if err := CheckKey(op.Key); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.checkFence(ctx); err != nil {
		return err
	}
	temps := make([]string, len(ops))
	defer func() {
		for _, t := range temps {
			if t != "" {
				_ = os.Remove(t)
			}
		}
	}()
	for i, op := range ops {
		if op.Delete {
			continue
		}
		p := f.Path(op.Key)
		// RemoveEmptyFolders (another process's) may remove the folder
		// between the two steps, while it is still empty: try again.
		for try := 1; ; try++ {
			if err := mkdirAll(filepath.Dir(p)); err != nil {
				return err
			}
			temps[i], err = writeTemp(p, op.Value)
			if err == nil {
				break
			}
			if try == 3 || !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	// Checked again right before the first rename: the lease may have
	// been lost while the temporary files were written.
	if err := f.checkFence(ctx); err != nil {
		return err
	}
	var dirs []string
	for i, op := range ops {
		p := f.Path(op.Key)
		if op.Delete {
			if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				return fmt.Errorf("storage: remove %s: %w", op.Key, rerr)
			}
		} else {
			if rerr := os.Rename(temps[i], p); rerr != nil {
				return fmt.Errorf("storage: replace %s: %w", op.Key, rerr)
			}
			temps[i] = ""
		}
		if d := filepath.Dir(p); !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		if serr := syncDir(d); serr != nil && !errors.Is(serr, fs.ErrNotExist) {
			return serr
		}
	}
	return nil
}

// emptyFolderAge is how long a folder must have been left unchanged
// before RemoveEmptyFolders takes it: a writer creates a folder and then
// its file within microseconds, so a fresh empty folder is one being
// written into.
const emptyFolderAge = time.Minute

// RemoveEmptyFolders removes the folders directly under prefix that hold
// nothing, not even a hidden file, and have not changed for a minute,
// and returns how many it removed. Deleting a key leaves its folder
// behind (it goes at a later call, a minute on); callers that give each
// writer a folder of its own (the fleet: one per node and process) call
// this so that the folders of writers long gone do not pile up.
func (f *Files) RemoveEmptyFolders(ctx context.Context, prefix string) (int, error) {
	if err := CheckKey(strings.TrimSuffix(prefix, "/")); err != nil {
		return 0, err
	}
	dir := f.Path(strings.TrimSuffix(prefix, "/"))
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage: list %s: %w", prefix, err)
	}
	removed := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		if !e.IsDir() {
			continue
		}
		if info, err := e.Info(); err != nil || f.now().Sub(info.ModTime()) < emptyFolderAge {
			continue
		}
		// os.Remove takes a folder only when it is empty: one a writer
		// filled in the meantime stays.
		if err := os.Remove(filepath.Join(dir, e.Name())); err == nil {
			removed++
		}
	}
	if removed > 0 {
		_ = syncDir(dir)
	}
	return removed, nil
}

// List returns the keys under prefix (a folder), recursively and sorted.
// Hidden files and folders (temporary files, locks) are left out.
func (f *Files) List(ctx context.Context, prefix string) ([]string, error) {
	dir := f.root
	if prefix = strings.TrimSuffix(prefix, "/"); prefix != "" {
		if err := CheckKey(prefix); err != nil {
			return nil, err
		}
		dir = f.Path(prefix)
	}
	var keys []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if p != dir && isTempName(d.Name()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			rel, rerr := filepath.Rel(f.root, p)
			if rerr != nil {
				return rerr
			}
			keys = append(keys, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: list %s: %w", dir, err)
	}
	slices.Sort(keys)
	return keys, nil
}

// removeStaleTemps removes temporary files older than staleTempAge.
func (f *Files) removeStaleTemps() {
	cutoff := f.now().Add(-staleTempAge)
	_ = filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if p != f.root && d.Name() == locksDir {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.Contains(d.Name(), tempMarker) && !strings.HasPrefix(d.Name(), ".zoku-probe-") {
			return nil
		}
		if info, ierr := d.Info(); ierr == nil && info.ModTime().Before(cutoff) {
			_ = os.Remove(p)
		}
		return nil
	})
}
