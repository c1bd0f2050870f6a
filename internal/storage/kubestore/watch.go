package kubestore

import (
	"bytes"
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/zoku/zoku/internal/storage"
)

// Watch reports keys changed under prefix by any replica. It lists the
// store's Secrets, then watches them from that list's resourceVersion;
// when the watch ends (the API server restarted, or the history it asked
// for is gone) it lists again and reports every key whose value changed
// meanwhile, so nothing is missed.
func (s *Store) Watch(ctx context.Context, prefix string) (<-chan string, error) {
	prefix = strings.TrimSuffix(prefix, "/")
	if err := storage.CheckKey(prefix); err != nil {
		return nil, err
	}
	out := make(chan string, 64)
	known := map[string]map[string][]byte{} // Secret name -> key -> value
	send := func(k string) bool {
		select {
		case out <- k:
			return true
		case <-ctx.Done():
			return false
		}
	}
	// diff reports the keys of one Secret whose values changed.
	diff := func(name string, now map[string][]byte) bool {
		before := known[name]
		for k, v := range now {
			if old, ok := before[k]; !ok || !bytes.Equal(old, v) {
				if !send(k) {
					return false
				}
			}
		}
		for k := range before {
			if _, ok := now[k]; !ok {
				if !send(k) {
					return false
				}
			}
		}
		if len(now) == 0 {
			delete(known, name)
		} else {
			known[name] = now
		}
		return true
	}
	values := func(sec *corev1.Secret) map[string][]byte {
		m := map[string][]byte{}
		for dk, k := range keysOf(sec) {
			if v, ok := sec.Data[dk]; ok && strings.HasPrefix(k, prefix+"/") {
				m[k] = v
			}
		}
		return m
	}
	// list fills known (reporting changes unless first) and returns the
	// resourceVersion to watch from.
	list := func(first bool) (string, bool) {
		cctx, cancel := s.ctx(ctx)
		defer cancel()
		l, err := s.client.Secrets(s.o.Namespace).List(cctx, metav1.ListOptions{LabelSelector: s.selector()})
		if err != nil {
			return "", false
		}
		seen := map[string]bool{}
		for i := range l.Items {
			sec := &l.Items[i]
			seen[sec.Name] = true
			if first {
				if v := values(sec); len(v) > 0 {
					known[sec.Name] = v
				}
				continue
			}
			if !diff(sec.Name, values(sec)) {
				return "", false
			}
		}
		for name := range known {
			if !seen[name] && !diff(name, nil) {
				return "", false
			}
		}
		return l.ResourceVersion, true
	}
	rv, ok := list(true)
	if !ok {
		// The first list failed: start from "now" all the same; the loop
		// lists again.
		rv = ""
	}
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			if rv == "" {
				var ok bool
				if rv, ok = list(false); !ok {
					if !sleep(ctx, time.Second) {
						return
					}
					continue
				}
			}
			w, err := s.client.Secrets(s.o.Namespace).Watch(ctx, metav1.ListOptions{LabelSelector: s.selector(), ResourceVersion: rv, AllowWatchBookmarks: true})
			if err != nil {
				rv = ""
				if !sleep(ctx, time.Second) {
					return
				}
				continue
			}
			rv = s.follow(ctx, w, values, diff)
			w.Stop()
		}
	}()
	return out, nil
}

// follow reads one watch until it ends; it returns the resourceVersion
// to resume from, or "" to list again.
func (s *Store) follow(ctx context.Context, w watch.Interface, values func(*corev1.Secret) map[string][]byte, diff func(string, map[string][]byte) bool) string {
	rv := ""
	for {
		select {
		case <-ctx.Done():
			return ""
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv
			}
			switch ev.Type {
			case watch.Error:
				return "" // e.g. 410 Gone: list again
			case watch.Bookmark:
				if o, ok := ev.Object.(metav1.Object); ok {
					rv = o.GetResourceVersion()
				}
			case watch.Added, watch.Modified:
				sec, ok := ev.Object.(*corev1.Secret)
				if !ok {
					continue
				}
				rv = sec.ResourceVersion
				if !diff(sec.Name, values(sec)) {
					return ""
				}
			case watch.Deleted:
				sec, ok := ev.Object.(*corev1.Secret)
				if !ok {
					continue
				}
				rv = sec.ResourceVersion
				if !diff(sec.Name, nil) {
					return ""
				}
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
