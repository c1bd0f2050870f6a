package certmgr

import (
	"context"
	"crypto/x509"
	"log/slog"
	"strings"

	"github.com/zoku/zoku/internal/storage"
)

// watch follows the certificate folder of a storage that reports changes
// (storage.Watcher): a set another process or node stores is read and,
// when it is newer than the one served, swapped into the cache. The .json
// of a set is written last, so only .json changes are looked at.
func (m *Manager) watch(ctx context.Context) {
	w, ok := m.opts.Store.Backend().(storage.Watcher)
	if !ok {
		return
	}
	ch, err := w.Watch(ctx, "certificates")
	if err != nil {
		m.log.Warn("storage cannot be watched; certificates stored by other processes are seen at the next renewal check", "error", err)
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer m.recoverPanic()
		for key := range ch {
			if !strings.HasSuffix(key, ".json") {
				continue
			}
			if name := storage.NameOfKey(key); name != "" {
				m.reload(ctx, name)
			}
		}
	}()
}

// reload reads the set stored under the file name name and serves it when
// it is a managed set's and newer than the one in service.
func (m *Manager) reload(ctx context.Context, name string) {
	m.mu.Lock()
	st, ok := m.byFile[name]
	var (
		setName string
		cur     *x509.Certificate
		domains []string
	)
	if ok {
		setName, cur, domains = st.set.Name, st.leaf, st.set.Domains
	}
	// A set this process is ordering or loading reports its own result;
	// if it turns out another holder had the name, it reads storage then.
	busy := ok && st.inFlight
	if busy {
		st.reloadAsked = true
	}
	m.mu.Unlock()
	if !ok || busy {
		return
	}
	b, err := m.opts.Store.LoadCertificate(ctx, setName)
	if err != nil {
		return // removed or mid-write; a later event or check catches up
	}
	leaf := leafOf(b)
	if leaf == nil || !leafCovers(leaf, domains) || (m.opts.Usable != nil && m.opts.Usable(b) != nil) {
		return
	}
	if b, _, err = checkChain(b); err != nil {
		return
	}
	if cur != nil && leaf.SerialNumber.Cmp(cur.SerialNumber) == 0 {
		// Same certificate: only its renewal information may be newer.
		m.mu.Lock()
		if ri := freshARI(b.Meta.RenewalInfo, cur); ri != nil && (st.ari == nil || ri.FetchedAt.After(st.ari.FetchedAt)) {
			st.ari = ri
			m.wake(st)
		}
		m.mu.Unlock()
		return
	}
	if cur != nil && !leaf.NotBefore.After(cur.NotBefore) {
		return // older than the one served (a late event)
	}
	served, err := m.serveIfCovers(b, domains)
	if err != nil || served == nil {
		return
	}
	m.mu.Lock()
	m.served(st, b, served)
	m.mu.Unlock()
	m.logEvent(slog.LevelInfo, "certificate stored by another process or node: now serving it", EventLoaded, setName, served, b.Meta.Server, nil,
		slog.String("stored_by", b.Meta.StoredBy))
	m.emit(Event{Kind: EventLoaded, Name: setName, Bundle: b, Issuer: b.Meta.Server, FromStorage: true})
	m.Kick()
}
