package storage

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
)

// maxArchiveNameTries bounds the search for a free archive name when several
// archives of one certificate are made within the same second.
const maxArchiveNameTries = 100

// ArchiveCertificate moves the certificate set with this ID into
// archives/certificates/<name>_<unix>.zip, the archive lego's revoke makes
// (the zip comment is the folder the files came from, so lego can restore
// it). now gives <unix>; if that archive already exists the next free second
// is used. The live files are removed only after the zip is stored, .json
// first. It returns the zip's key; if no file of the set exists the error
// wraps fs.ErrNotExist.
func (s *Store) ArchiveCertificate(ctx context.Context, id string, now time.Time) (string, error) {
	name, err := checkCertName(id)
	if err != nil {
		return "", err
	}

	mu := s.lock("cert", name)
	mu.Lock()
	defer mu.Unlock()

	// The .json first: removing it first makes the set invisible before
	// the rest goes, so a crash midway never leaves a listed, broken set.
	var (
		files []string
		data  [][]byte
	)

	for _, k := range certKeysOf(name).all() {
		v, err := s.loadOptional(ctx, k)
		if err != nil {
			return "", err
		}

		if v != nil {
			files, data = append(files, k), append(data, v)
		}
	}

	if len(files) == 0 {
		return "", fmt.Errorf("storage: no certificate %q to archive: %w", id, fs.ErrNotExist)
	}

	dest, err := s.freeArchiveName(ctx, archivesDir+"/"+certificatesDir, name, now.Unix())
	if err != nil {
		return "", err
	}

	zipped, err := zipFiles(certificatesDir, files, data, now)
	if err != nil {
		return "", fmt.Errorf("storage: archive %q: %w", dest, err)
	}

	if err := s.b.Store(ctx, dest, zipped); err != nil {
		return "", err
	}

	ops := make([]Op, len(files))
	for i, f := range files {
		ops[i] = Op{Key: f, Delete: true}
	}

	if err := storeAll(ctx, s.b, ops); err != nil {
		return "", fmt.Errorf("%w (the set is saved in %q)", err, dest)
	}

	if p, ok := findBackend[Pather](s.b); ok {
		return p.Path(dest), nil
	}

	return dest, nil
}

// freeArchiveName returns <dir>/<name>_<unix>.zip for the first unix >= the
// given one whose key does not exist yet.
func (s *Store) freeArchiveName(ctx context.Context, dir, name string, unix int64) (string, error) {
	for i := range int64(maxArchiveNameTries) {
		k := dir + "/" + name + "_" + strconv.FormatInt(unix+i, 10) + ".zip"

		ok, err := s.exists(ctx, k)
		if err != nil {
			return "", err
		}

		if !ok {
			return k, nil
		}
	}

	return "", fmt.Errorf("storage: too many archives of %q around the same time in %q; remove old ones", name, dir)
}

// zipFiles builds a zip of the values (by the base names of their keys).
func zipFiles(comment string, keys []string, data [][]byte, modified time.Time) ([]byte, error) {
	var buf bytes.Buffer

	zw := zip.NewWriter(&buf)

	if err := zw.SetComment(comment); err != nil {
		return nil, err
	}

	for i, k := range keys {
		h := &zip.FileHeader{Name: path.Base(k), Method: zip.Deflate, Modified: modified}
		h.SetMode(fileMode)

		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}

		if _, err := w.Write(data[i]); err != nil {
			return nil, fmt.Errorf("add %q: %w", path.Base(k), err)
		}
	}

	if err := zw.Close(); err != nil {
		return nil, err
	}

	return buf.Bytes(), nil
}

// archiveTree copies every key under dir (recursively) with archiveCopies.
func (s *Store) archiveTree(ctx context.Context, dir, base string) error {
	keys, err := s.b.List(ctx, dir)
	if err != nil {
		return fmt.Errorf("storage: list %q for archiving: %w", dir, err)
	}

	return s.archiveCopies(ctx, base, keys...)
}

// archiveCopies copies the given keys that exist into <base>/<unix>/, each
// at its own key. If a copy made earlier in the same second holds one of
// those keys, <base>/<unix>-1/ (-2, ...) is used instead, so an archived
// value is never overwritten. Callers hold the lock of the object the keys
// belong to.
func (s *Store) archiveCopies(ctx context.Context, base string, keys ...string) error {
	var (
		srcs []string
		vals [][]byte
	)

	for _, k := range keys {
		v, err := s.loadOptional(ctx, k)
		if err != nil {
			return fmt.Errorf("storage: read %q for archiving: %w", k, err)
		}

		if v != nil {
			srcs, vals = append(srcs, k), append(vals, v)
		}
	}

	if len(srcs) == 0 {
		return nil
	}

	stamp := strconv.FormatInt(s.now().Unix(), 10)

	for i := range maxArchiveNameTries {
		dest := base + "/" + stamp
		if i > 0 {
			dest += "-" + strconv.Itoa(i)
		}

		free, err := s.allAbsent(ctx, dest, srcs)
		if err != nil {
			return err
		}

		if !free {
			continue
		}

		ops := make([]Op, len(srcs))
		for j, src := range srcs {
			ops[j] = Op{Key: dest + "/" + src, Value: vals[j]}
		}

		return storeAll(ctx, s.b, ops)
	}

	return fmt.Errorf("storage: too many archives in %q within one second; remove old ones", base)
}

// allAbsent reports whether none of the keys exists under dir.
func (s *Store) allAbsent(ctx context.Context, dir string, keys []string) (bool, error) {
	for _, k := range keys {
		ok, err := s.exists(ctx, dir+"/"+k)
		if err != nil || ok {
			return false, err
		}
	}

	return true, nil
}

// ArchivedCertificates lists the keys of archived certificate sets
// (archives/certificates/*.zip), sorted.
func (s *Store) ArchivedCertificates(ctx context.Context) ([]string, error) {
	keys, err := s.b.List(ctx, archivesDir+"/"+certificatesDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}

	var out []string

	for _, k := range keys {
		if strings.HasSuffix(k, ".zip") {
			out = append(out, k)
		}
	}

	return out, nil
}
