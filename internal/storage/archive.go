package storage

import (
	"archive/zip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// maxArchiveNameTries bounds the search for a free archive name when several
// archives of one certificate are made within the same second.
const maxArchiveNameTries = 100

// ArchiveCertificate moves the certificate set with this ID into
// archives/certificates/<name>_<unix>.zip, the archive lego's revoke makes
// (the zip comment is the folder the files came from, so lego can restore
// it). now gives <unix>; if that archive already exists the next free second
// is used. The live files are removed only after the zip is complete and
// fsynced, .json first. It returns the zip's path; if no file of the set
// exists the error wraps fs.ErrNotExist.
func (s *Store) ArchiveCertificate(id string, now time.Time) (string, error) {
	name, err := checkCertName(id)
	if err != nil {
		return "", err
	}

	mu := s.lock("cert", name)
	mu.Lock()
	defer mu.Unlock()

	paths := s.certPathsByName(name)

	// The .json first: removing it first makes the set invisible before
	// the rest goes, so a crash midway never leaves a listed, broken set.
	candidates := []string{paths.JSON, paths.Cert, paths.Issuer, paths.Key, paths.PEM, filepath.Join(s.root, certificatesDir, name+extPFX)}

	var files []string

	for _, f := range candidates {
		ok, err := fileExists(f)
		if err != nil {
			return "", err
		}

		if ok {
			files = append(files, f)
		}
	}

	if len(files) == 0 {
		return "", fmt.Errorf("storage: no certificate %q to archive: %w", id, fs.ErrNotExist)
	}

	archiveDir := filepath.Join(s.root, archivesDir, certificatesDir)
	if err := mkdirAll(archiveDir); err != nil {
		return "", err
	}

	dest, err := freeArchiveName(archiveDir, name, now.Unix())
	if err != nil {
		return "", err
	}

	if err := writeZipAtomic(dest, certificatesDir, files, now); err != nil {
		return "", err
	}

	if err := removeFiles(files...); err != nil {
		return "", fmt.Errorf("%w (the set is saved in %q)", err, dest)
	}

	return dest, nil
}

// freeArchiveName returns <dir>/<name>_<unix>.zip for the first unix >= the
// given one whose file does not exist yet.
func freeArchiveName(dir, name string, unix int64) (string, error) {
	for i := range int64(maxArchiveNameTries) {
		p := filepath.Join(dir, name+"_"+strconv.FormatInt(unix+i, 10)+".zip")

		ok, err := fileExists(p)
		if err != nil {
			return "", err
		}

		if !ok {
			return p, nil
		}
	}

	return "", fmt.Errorf("storage: too many archives of %q around the same time in %q; remove old ones", name, dir)
}

// writeZipAtomic writes files (by base name) into a zip at dest through a
// temporary file that is fsynced and renamed into place.
func writeZipAtomic(dest, comment string, files []string, modified time.Time) (err error) {
	dir, base := filepath.Split(dest)

	tmp, err := os.CreateTemp(dir, "."+base+tempMarker+"*")
	if err != nil {
		return fmt.Errorf("storage: create archive %q: %w", dest, err)
	}

	tmpName := tmp.Name()

	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()

	if err := tmp.Chmod(fileMode); err != nil {
		return fmt.Errorf("storage: create archive %q: %w", dest, err)
	}

	zw := zip.NewWriter(tmp)

	if err := zw.SetComment(comment); err != nil {
		return fmt.Errorf("storage: archive %q: %w", dest, err)
	}

	for _, f := range files {
		if err := addToZip(zw, f, modified); err != nil {
			return fmt.Errorf("storage: archive %q: %w", dest, err)
		}
	}

	if err := zw.Close(); err != nil {
		return fmt.Errorf("storage: archive %q: %w", dest, err)
	}

	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("storage: fsync archive %q: %w", dest, err)
	}

	if err := tmp.Close(); err != nil {
		return fmt.Errorf("storage: close archive %q: %w", dest, err)
	}

	if err := os.Rename(tmpName, dest); err != nil {
		return fmt.Errorf("storage: place archive %q: %w", dest, err)
	}

	return syncDir(dir)
}

func addToZip(zw *zip.Writer, path string, modified time.Time) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}

	defer func() { _ = in.Close() }()

	h := &zip.FileHeader{Name: filepath.Base(path), Method: zip.Deflate, Modified: modified}
	h.SetMode(fileMode)

	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}

	if _, err := io.Copy(w, in); err != nil {
		return fmt.Errorf("copy %q: %w", filepath.Base(path), err)
	}

	return nil
}

// archiveTree copies every regular file under dir (recursively) with
// archiveCopies.
func (s *Store) archiveTree(dir, base string) error {
	var files []string

	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}

		if d.Type().IsRegular() && !isTempName(d.Name()) {
			files = append(files, p)
		}

		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: list %q for archiving: %w", dir, err)
	}

	return s.archiveCopies(base, files...)
}

// archiveCopies copies the given files that exist into <base>/<unix>/, each
// at its path relative to the store root. If a copy made earlier in the same
// second holds one of those paths, <base>/<unix>-1/ (-2, ...) is used instead,
// so an archived file is never overwritten. Callers hold the lock of the
// object the files belong to.
func (s *Store) archiveCopies(base string, files ...string) error {
	var srcs, rels []string

	for _, f := range files {
		ok, err := fileExists(f)
		if err != nil {
			return err
		}

		if !ok {
			continue
		}

		rel, err := filepath.Rel(s.root, f)
		if err != nil {
			return fmt.Errorf("storage: archive %q: %w", f, err)
		}

		srcs = append(srcs, f)
		rels = append(rels, rel)
	}

	if len(srcs) == 0 {
		return nil
	}

	stamp := strconv.FormatInt(s.now().Unix(), 10)

	for i := range maxArchiveNameTries {
		dest := filepath.Join(base, stamp)
		if i > 0 {
			dest += "-" + strconv.Itoa(i)
		}

		free, err := allAbsent(dest, rels)
		if err != nil {
			return err
		}

		if !free {
			continue
		}

		for j, src := range srcs {
			if err := copyFileAtomic(src, filepath.Join(dest, rels[j])); err != nil {
				return err
			}
		}

		return nil
	}

	return fmt.Errorf("storage: too many archives in %q within one second; remove old ones", base)
}

// allAbsent reports whether none of the relative paths exists under dir.
func allAbsent(dir string, rels []string) (bool, error) {
	for _, rel := range rels {
		ok, err := fileExists(filepath.Join(dir, rel))
		if err != nil || ok {
			return false, err
		}
	}

	return true, nil
}
