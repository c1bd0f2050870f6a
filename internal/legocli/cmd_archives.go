package legocli

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxArchiveEntry bounds one file read out of an archive (certificates,
// keys and their .json are a few kilobytes), maxArchiveEntries their
// number (a certificate set has six files, an account two).
const (
	maxArchiveEntry   = 1 << 20
	maxArchiveEntries = 16
)

// archives lists the zip archives under archives/<kind>/ (keys), sorted.
func archives(ctx context.Context, inv *invocation, kind string) ([]string, error) {
	p, err := inv.path()
	if err != nil {
		return nil, err
	}
	st, err := openStore(p)
	if err != nil {
		return nil, err
	}
	keys, err := st.Backend().List(ctx, "archives/"+kind)
	if err != nil {
		return nil, nil //nolint:nilerr // no archives folder: no archives
	}
	var out []string
	for _, k := range keys {
		if strings.HasSuffix(k, ".zip") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// archiveDate reads the unix time at the end of an archive's name.
func archiveDate(key string) time.Time {
	base := strings.TrimSuffix(path.Base(key), ".zip")
	i := strings.LastIndexByte(base, '_')
	n, err := strconv.ParseInt(base[i+1:], 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(n, 0)
}

// runArchivesList is `lego archives list`.
func runArchivesList(ctx context.Context, inv *invocation) error {
	if err := inv.refuseUnavailable(); err != nil {
		return err
	}
	w := inv.env.Stdout
	total := 0
	for _, kind := range []struct{ dir, title string }{{"accounts", "Account archives:"}, {"certificates", "Certificate archives:"}} {
		keys, err := archives(ctx, inv, kind.dir)
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			continue
		}
		total += len(keys)
		fmt.Fprintln(w, kind.title)
		for i, k := range keys {
			mark := "├──"
			if i == len(keys)-1 {
				mark = "└──"
			}
			fmt.Fprintf(w, "%s %s (%s)\n", mark, path.Base(k), archiveDate(k))
		}
		fmt.Fprintln(w)
	}
	if total == 0 {
		fmt.Fprintln(w, "No archives found.")
	}
	return nil
}

// runArchivesRestore is `lego archives restore`: list the archives, ask
// which one, put its files back where they came from (the zip's comment
// names the folder) and remove the archive.
func runArchivesRestore(ctx context.Context, inv *invocation) error {
	if err := inv.refuseUnavailable(); err != nil {
		return err
	}
	accts, err := archives(ctx, inv, "accounts")
	if err != nil {
		return err
	}
	certs, err := archives(ctx, inv, "certificates")
	if err != nil {
		return err
	}
	all := append(accts, certs...)
	w := inv.env.Stdout
	if len(all) == 0 {
		fmt.Fprintln(w, "No archives found.")
		return nil
	}
	for i, k := range all {
		fmt.Fprintf(w, "%d: %s - %s - %s\n", i+1, path.Base(path.Dir(k)), archiveDate(k), path.Base(k))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Which archive to restore? 1-%d\n", len(all))
	line, err := bufio.NewReader(inv.env.Stdin).ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || line == "") {
		return errors.New("no answer on standard input; give the archive's number")
	}
	n, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || n < 1 || n > len(all) {
		return fmt.Errorf("%q is not an archive number; give 1 to %d", strings.TrimSpace(line), len(all))
	}
	p, err := inv.path()
	if err != nil {
		return err
	}
	st, err := openStore(p)
	if err != nil {
		return err
	}
	b := st.Backend()
	key := all[n-1]
	raw, err := b.Load(ctx, key)
	if err != nil {
		return err
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return fmt.Errorf("%s is not a zip archive: %w", key, err)
	}
	dir := strings.Trim(path.Clean("/"+zr.Comment), "/")
	if dir != "certificates" && !strings.HasPrefix(dir, "accounts/") && dir != "accounts" {
		return fmt.Errorf("%s does not say where its files belong (comment %q); restore it by hand", key, zr.Comment)
	}
	if len(zr.File) > maxArchiveEntries {
		return fmt.Errorf("%s holds %d files, more than a certificate set or account has; restore it by hand", key, len(zr.File))
	}
	type entry struct {
		key  string
		data []byte
	}
	var files []entry
	for _, f := range zr.File {
		name := path.Base(f.Name)
		if name != f.Name || name == "." || name == ".." || strings.HasPrefix(name, ".") {
			return fmt.Errorf("%s holds an unexpected entry %q; restore it by hand", key, f.Name)
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		data, err := io.ReadAll(io.LimitReader(rc, maxArchiveEntry+1))
		_ = rc.Close()
		if err != nil {
			return err
		}
		if len(data) > maxArchiveEntry {
			return fmt.Errorf("%s: entry %q is too large for a certificate file", key, f.Name)
		}
		files = append(files, entry{dir + "/" + name, data})
	}
	// The .json last: a set becomes visible only once it is complete.
	sort.SliceStable(files, func(i, j int) bool {
		return !strings.HasSuffix(files[i].key, ".json") && strings.HasSuffix(files[j].key, ".json")
	})
	for _, e := range files {
		if err := b.Store(ctx, e.key, e.data); err != nil {
			return fmt.Errorf("restore %s: %w", e.key, err)
		}
	}
	if err := b.Delete(ctx, key); err != nil {
		return fmt.Errorf("restored, but the archive %s could not be removed: %w", key, err)
	}
	fmt.Fprintf(w, "Restored %s into %s/.\n", path.Base(key), dir)
	return nil
}
