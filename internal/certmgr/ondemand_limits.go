package certmgr

import (
	"container/list"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zoku/zoku/internal/storage"
)

// Keys of the on-demand counters every process on one storage shares.
const (
	onDemandNames = "ondemand/names" // one key per name ordered on demand
	onDemandRate  = "ondemand/rate"  // one key per minute: the orders of that minute
)

// countShared counts an on-demand order in storage, so the cap and the
// rate hold for a cluster as a whole: under a lock, it counts the names
// ordered so far and the orders of this minute, and records this one.
func (m *Manager) countShared(ctx context.Context, od *onDemandState, name string, now time.Time) error {
	b := m.opts.Store.Backend()
	lease, err := b.Lock(ctx, "ondemand")
	if err != nil {
		return fmt.Errorf("on-demand counters: %w", err)
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	fenced := storage.WithFence(ctx, lease)
	names, err := b.List(ctx, onDemandNames)
	if err != nil {
		return fmt.Errorf("on-demand counters: %w", err)
	}
	key := onDemandNames + "/" + storage.SanitizedName(name)
	for _, k := range names {
		if k == key {
			return nil // ordered before (by this or another node)
		}
	}
	if len(names) >= od.cfg.MaxNames {
		return fmt.Errorf("on-demand cap of %d names reached", od.cfg.MaxNames)
	}
	minute := now.Unix() / 60
	rateKey := onDemandRate + "/" + strconv.FormatInt(minute, 10)
	n := 0
	if raw, err := b.Load(ctx, rateKey); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(raw)))
	}
	if n >= od.cfg.RatePerMinute {
		return fmt.Errorf("on-demand rate limit of %d per minute reached", od.cfg.RatePerMinute)
	}
	if err := b.Store(fenced, rateKey, []byte(strconv.Itoa(n+1))); err != nil {
		return fmt.Errorf("on-demand counters: %w", err)
	}
	if err := b.Store(fenced, key, []byte(now.UTC().Format(time.RFC3339))); err != nil {
		return fmt.Errorf("on-demand counters: %w", err)
	}
	// Forget minutes long gone.
	if old, err := b.List(ctx, onDemandRate); err == nil {
		for _, k := range old {
			if v, err := strconv.ParseInt(strings.TrimPrefix(k, onDemandRate+"/"), 10, 64); err == nil && v < minute-1 {
				_ = b.Delete(fenced, k)
			}
		}
	}
	return nil
}

// denyCache remembers refused names until their refusal expires, at most
// size of them: every operation is O(1), and the oldest refusal is
// forgotten first when the cache is full (a scan of a million random
// names costs the same per name as one of ten).
type denyCache struct {
	mu    sync.Mutex
	size  int
	order *list.List               // oldest first; values are *denied
	index map[string]*list.Element // name -> element
}

type denied struct {
	name  string
	until time.Time
}

func newDenyCache(size int) *denyCache {
	return &denyCache{size: size, order: list.New(), index: make(map[string]*list.Element)}
}

// has reports whether name was refused and the refusal still holds.
func (c *denyCache) has(name string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.index[name]
	if !ok {
		return false
	}
	if now.Before(e.Value.(*denied).until) {
		return true
	}
	c.order.Remove(e)
	delete(c.index, name)
	return false
}

// add remembers a refusal until until.
func (c *denyCache) add(name string, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.index[name]; ok {
		e.Value.(*denied).until = until
		c.order.MoveToBack(e)
		return
	}
	if c.order.Len() >= c.size {
		oldest := c.order.Front()
		c.order.Remove(oldest)
		delete(c.index, oldest.Value.(*denied).name)
	}
	c.index[name] = c.order.PushBack(&denied{name: name, until: until})
}

// len is the number of refusals remembered.
func (c *denyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
