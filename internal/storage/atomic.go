package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Modes of everything the store creates.
const (
	dirMode  os.FileMode = 0o700
	fileMode os.FileMode = 0o600
)

// tempMarker is part of every temporary file name. Temporary files are also
// hidden (leading '.'), which is what listings skip: certificate IDs whose
// file name would start with '.' are refused, so no real file is hidden.
const tempMarker = ".tmp-"

// isTempName reports whether a base name may belong to a temporary file (of
// ours, or an editor's): every hidden file is treated so.
func isTempName(base string) bool {
	return strings.HasPrefix(base, ".")
}

// mkdirAll creates dir and its parents with mode 0700, and fsyncs the parent
// of every folder it created so the new folders survive a crash.
func mkdirAll(dir string) error {
	// Find the folders that do not exist yet, deepest first.
	var missing []string

	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}

		missing = append(missing, d)

		if filepath.Dir(d) == d {
			break
		}
	}

	if len(missing) == 0 {
		return nil
	}

	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("storage: create folder %q: %w", dir, err)
	}

	for i := len(missing) - 1; i >= 0; i-- {
		if err := syncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}

	return nil
}

// writeFileAtomic replaces path with data (mode 0600) by temp file, fsync and
// rename, then fsyncs the folder.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("storage: replace %q: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data to a new hidden temporary file next to path, with mode
// 0600, and fsyncs it. It returns the temporary file's name.
func writeTemp(path string, data []byte) (string, error) {
	dir, base := filepath.Split(path)

	f, err := os.CreateTemp(dir, "."+base+tempMarker+"*")
	if err != nil {
		return "", fmt.Errorf("storage: create a temporary file for %q: %w", path, err)
	}

	name := f.Name()

	werr := func() error {
		// CreateTemp already uses 0600; Chmod makes it independent of umask
		// and of platform defaults.
		if err := f.Chmod(fileMode); err != nil {
			return err
		}

		if _, err := f.Write(data); err != nil {
			return err
		}

		return f.Sync()
	}()

	cerr := f.Close()

	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(name)

		return "", fmt.Errorf("storage: write %q: %w", path, err)
	}

	return name, nil
}

// syncDir fsyncs a folder so that renames and removals in it are durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		// Folders cannot be opened for fsync on Windows; renames there are
		// made durable by the file system itself.
		return nil
	}

	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("storage: open folder %q for fsync: %w", dir, err)
	}

	serr := d.Sync()
	cerr := d.Close()

	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("storage: fsync folder %q: %w", dir, err)
	}

	return nil
}

// WriteFile writes data to path the way the store writes everything: 0700
// folders created as needed, a 0600 temporary file in the same folder,
// fsync, rename, fsync of the folder. A reader sees the old content or the
// new, never a part.
func WriteFile(path string, data []byte) error {
	if err := mkdirAll(filepath.Dir(path)); err != nil {
		return err
	}
	return writeFileAtomic(path, data)
}
