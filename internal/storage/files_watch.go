package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch reports keys stored or deleted under prefix by any process. It
// watches the prefix folder with inotify (one level: the certificate
// folder is flat) and also compares a listing every PollInterval, for file
// systems that send no notifications. Temporary files are not reported;
// their rename into place is.
func (f *Files) Watch(ctx context.Context, prefix string) (<-chan string, error) {
	prefix = strings.TrimSuffix(prefix, "/")
	if err := CheckKey(prefix); err != nil {
		return nil, err
	}
	dir := f.Path(prefix)
	if err := mkdirAll(dir); err != nil {
		return nil, err
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("storage: watch %s: %w", prefix, err)
	}
	if err := fsw.Add(dir); err != nil {
		_ = fsw.Close()
		return nil, fmt.Errorf("storage: watch %s: %w", prefix, err)
	}
	// The listing the polls compare with is taken at the first tick, not
	// now: a start with 100,000 certificates has better things to do, and
	// inotify reports the changes meanwhile.
	var snap map[string]int64
	out := make(chan string, 64)
	go func() {
		defer close(out)
		defer fsw.Close()
		tick := time.NewTimer(f.pollInterval)
		defer tick.Stop()
		send := func(key string) bool {
			select {
			case out <- key:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-fsw.Events:
				if !ok {
					return
				}
				base := filepath.Base(ev.Name)
				if isTempName(base) || ev.Op == fsnotify.Chmod {
					continue
				}
				if !send(prefix + "/" + base) {
					return
				}
			case <-fsw.Errors:
				// Overflow or a watch error: the next poll catches up.
			case <-tick.C:
				began := time.Now()
				now, err := f.snapshot(ctx, prefix)
				// A scan of 100,000 certificates' files takes a while:
				// the next waits pollDuty times as long, so that the
				// safety net never takes more than a sliver of a core.
				tick.Reset(max(f.pollInterval, pollDuty*time.Since(began)))
				if err != nil {
					continue
				}
				if snap == nil {
					snap = now
					continue
				}
				for k, rev := range now {
					if snap[k] != rev && !send(k) {
						return
					}
				}
				for k := range snap {
					if _, ok := now[k]; !ok && !send(k) {
						return
					}
				}
				snap = now
			}
		}
	}()
	return out, nil
}

// pollDuty bounds the share of time Watch spends scanning: the next scan
// waits at least pollDuty times as long as the last took.
const pollDuty = 50

// snapshot maps every key under prefix to its revision.
func (f *Files) snapshot(ctx context.Context, prefix string) (map[string]int64, error) {
	keys, err := f.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(keys))
	for _, k := range keys {
		if info, err := f.Stat(ctx, k); err == nil {
			out[k] = info.Revision
		}
	}
	return out, nil
}
