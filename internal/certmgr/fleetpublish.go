package certmgr

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zoku/zoku/internal/storage"
)

// This file writes a node's documents under nodes/<node>/ (see fleet.go)
// and removes those of nodes gone for long.

// PublishNow writes this node's status now, certificates included, and
// returns the storage's error, if any.
func (f *Fleet) PublishNow(ctx context.Context) error { return f.publish(ctx, true, false) }

// encodedShard is one shard ready to store.
type encodedShard struct {
	key    string
	digest string
	count  int
	raw    []byte     // uncompressed JSON; nil when unchanged since the last store
	certs  []NodeCert // what raw encodes (certificate shards)
}

// publish writes the heartbeat, after the certificate shards when
// refresh is set, an event came, or the last look at the certificates
// is older than refreshEvery; then it removes shards no longer listed,
// and every gcEvery other nodes' documents past their TTL. A look at the
// certificates costs the manager's Statuses and a comparison with what
// was stored; only changed shards are encoded (about 2.5 µs a
// certificate), compressed and stored.
func (f *Fleet) publish(ctx context.Context, refresh, stopped bool) error {
	f.pubMu.Lock()
	defer f.pubMu.Unlock()
	now := f.opts.Now().UTC()
	b := f.m.opts.Store.Backend()
	full := now.Sub(f.lastFull) >= fullRewriteEvery
	if f.dirty.Swap(false) || refresh || stopped || full || now.Sub(f.lastEncode) >= refreshEvery {
		certs, failing := f.certs()
		// Shards stored as they are need no encoding, unless all are
		// rewritten.
		prev := map[string]encodedShard{}
		for k, sh := range f.stored {
			if !full && f.written[k] == sh.digest {
				prev[k] = sh
			}
		}
		shards, err := encodeCertShards(f.dir, certs, prev)
		if err == nil {
			err = f.storeShards(ctx, b, shards, full)
		}
		if err != nil {
			f.dirty.Store(true) // look again at the next heartbeat
			return f.publishFailed(err)
		}
		f.certRefs = f.certRefs[:0]
		f.stored = make(map[string]encodedShard, len(shards))
		for _, sh := range shards {
			f.certRefs = append(f.certRefs, ShardRef{Key: sh.key, Digest: sh.digest, Count: sh.count})
			f.stored[sh.key] = encodedShard{key: sh.key, digest: sh.digest, count: sh.count, certs: sh.certs}
		}
		f.certCount, f.certFailing, f.lastEncode = len(certs), failing, now
	}
	hdr := f.header(now)
	hdr.Stopped = stopped
	hdr.CertificateCount, hdr.Failing = f.certCount, f.certFailing
	hdr.Shards = slices.Clone(f.certRefs)
	keep := map[string]bool{}
	for _, ref := range hdr.Shards {
		keep[ref.Key] = true
	}
	if targets := f.targets(); targets != nil {
		raw, err := json.Marshal(targets)
		if err != nil {
			return f.publishFailed(err)
		}
		sh := encodedShard{key: f.dir + "/" + targetsFile, digest: digestOf(raw), count: len(targets), raw: raw}
		if err := f.storeShards(ctx, b, []encodedShard{sh}, full); err != nil {
			return f.publishFailed(err)
		}
		hdr.TargetShard = &ShardRef{Key: sh.key, Digest: sh.digest, Count: sh.count}
		keep[sh.key] = true
	}
	raw, err := json.MarshalIndent(hdr, "", "  ")
	if err != nil {
		return f.publishFailed(err)
	}
	if err := b.Store(ctx, f.dir+"/"+statusFile, append(raw, '\n')); err != nil {
		return f.publishFailed(err)
	}
	if full {
		f.lastFull = now
		// Shards an earlier process of the same ID left (a container
		// restarted with its hostname and pid) are known to no one else.
		if keys, err := b.List(ctx, f.dir); err == nil {
			for _, k := range keys {
				if !keep[k] && k != f.dir+"/"+statusFile {
					f.written[k] = ""
				}
			}
		}
	}
	for key := range f.written {
		if !keep[key] {
			if err := b.Delete(ctx, key); err == nil {
				delete(f.written, key)
			}
		}
	}
	if f.failing {
		f.failing = false
		f.log.Info("fleet status published again", "node", f.id)
	}
	if !stopped && now.Sub(f.lastGC) >= gcEvery {
		f.lastGC = now
		f.removeGone(ctx, now)
	}
	return nil
}

// storeShards stores the shards whose digest differs from the one last
// stored (all of them when full); callers hold pubMu.
func (f *Fleet) storeShards(ctx context.Context, b storage.Backend, shards []encodedShard, full bool) error {
	for _, sh := range shards {
		if sh.raw == nil || (!full && f.written[sh.key] == sh.digest) {
			continue
		}
		z, err := gzipBytes(sh.raw)
		if err != nil {
			return err
		}
		if err := b.Store(ctx, sh.key, z); err != nil {
			delete(f.written, sh.key)
			return err
		}
		f.written[sh.key] = sh.digest
	}
	return nil
}

// publishFailed logs the first of a run of failures and returns err.
func (f *Fleet) publishFailed(err error) error {
	err = fmt.Errorf("certmgr: fleet: publish: %w", err)
	if !f.failing {
		f.failing = true
		f.log.Warn("cannot publish this node's status; other nodes will show it as stale", "node", f.id, "error", err)
	}
	return err
}

// header is this node's identity and heartbeat, without certificates.
func (f *Fleet) header(now time.Time) NodeStatus {
	s := NodeStatus{
		Schema: FleetSchema, ID: f.id, Version: f.opts.Version, Started: f.started, Heartbeat: now,
		IntervalSeconds: f.opts.Interval.Seconds(), Shards: []ShardRef{},
	}
	if f.opts.AdminURL != nil {
		s.AdminURL = f.opts.AdminURL()
	}
	return s
}

// certs is what the manager serves now, sorted by name, and how many of
// them failed their last order.
func (f *Fleet) certs() ([]NodeCert, int) {
	sts := f.m.Statuses()
	out := make([]NodeCert, 0, len(sts))
	failing := 0
	for _, st := range sts {
		c := NodeCert{
			Name: st.Name, Serial: st.Serial, NotAfter: sec(st.NotAfter), NextRenewal: sec(st.NextRenewal),
			NextReason: clip(st.NextReason, maxReasonLen), Failures: st.Failures, LastError: clip(st.LastErr, maxErrorLen),
		}
		if st.Failures > 0 {
			c.RetryAt = sec(st.RetryAt)
			failing++
		}
		out = append(out, c)
	}
	return out, failing
}

// targets is the node's deploy targets now; nil without Options.Targets.
func (f *Fleet) targets() []NodeTarget {
	if f.opts.Targets == nil {
		return nil
	}
	out := []NodeTarget{}
	for _, t := range f.opts.Targets() {
		t.Certificates = slices.Clone(t.Certificates)
		if t.Certificates == nil {
			t.Certificates = []string{}
		}
		t.LastError = clip(t.LastError, maxErrorLen)
		t.LastDeploy, t.LastSuccess, t.NextRun = sec(t.LastDeploy), sec(t.LastSuccess), sec(t.NextRun)
		out = append(out, t)
	}
	return out
}

// Self is this node's status as it is now (not as last published).
func (f *Fleet) Self() NodeStatus {
	s := f.header(f.opts.Now().UTC())
	s.Certificates, s.Failing = f.certs()
	s.CertificateCount, s.Targets, s.Self = len(s.Certificates), f.targets(), true
	return s
}

// encodeCertShards hashes certs (sorted by name) into a power-of-two
// number of shards of at most maxShardCerts each, and encodes each one,
// except those whose certificates equal the ones in prev: for them raw
// is nil and digest prev's. Comparing is far cheaper than encoding, so a
// look at 100,000 certificates where one changed encodes one shard.
func encodeCertShards(dir string, certs []NodeCert, prev map[string]encodedShard) ([]encodedShard, error) {
	n := 1
	for n*maxShardCerts < len(certs) {
		n *= 2
	}
	parts := make([][]NodeCert, n)
	for _, c := range certs {
		i := 0
		if n > 1 {
			h := fnv.New32a()
			_, _ = h.Write([]byte(c.Name))
			i = int(h.Sum32() % uint32(n))
		}
		parts[i] = append(parts[i], c)
	}
	out := make([]encodedShard, 0, n)
	for i, p := range parts {
		if p == nil {
			p = []NodeCert{}
		}
		sh := encodedShard{key: fmt.Sprintf("%s/certs-%d-%d.json.gz", dir, n, i), count: len(p), certs: p}
		if old, ok := prev[sh.key]; ok && slices.Equal(old.certs, p) {
			sh.digest = old.digest
		} else {
			raw, err := json.Marshal(p)
			if err != nil {
				return nil, err
			}
			sh.raw, sh.digest = raw, digestOf(raw)
		}
		out = append(out, sh)
	}
	return out, nil
}

func digestOf(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}

func gzipBytes(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// removeGone deletes the documents of other nodes that stopped more than
// StoppedTTL ago or vanished more than StaleTTL ago. Documents it cannot
// read or of a newer schema are left alone. On a file backend it also
// removes the node folders left empty.
func (f *Fleet) removeGone(ctx context.Context, now time.Time) {
	b := f.m.opts.Store.Backend()
	keys, err := b.List(ctx, nodesDir)
	if err != nil {
		return
	}
	byDir := map[string][]string{}
	for _, k := range keys {
		if dir, ok := nodeDirOf(k); ok {
			byDir[dir] = append(byDir[dir], k)
		}
	}
	for dir, ks := range byDir {
		if dir == f.dir {
			continue
		}
		hdr, err := loadHeader(ctx, b, dir+"/"+statusFile)
		if err != nil || hdr.Schema > FleetSchema {
			continue
		}
		ttl := f.opts.StaleTTL
		if hdr.Stopped {
			ttl = f.opts.StoppedTTL
		}
		if now.Sub(hdr.Heartbeat) <= ttl {
			continue
		}
		// The heartbeat goes last, so a half-removed node is never listed.
		slices.SortFunc(ks, func(x, y string) int {
			return boolInt(strings.HasSuffix(x, "/"+statusFile)) - boolInt(strings.HasSuffix(y, "/"+statusFile))
		})
		for _, k := range ks {
			if err := b.Delete(ctx, k); err != nil {
				break
			}
		}
		f.log.Info("removed the status of a node gone for long", "node", hdr.ID, "heartbeat", hdr.Heartbeat.UTC().Format(time.RFC3339), "stopped", hdr.Stopped)
	}
	// A file backend keeps the emptied folders (one per node and process):
	// remove them too, or every restart leaves one behind.
	if r, ok := storage.Underlying(b).(folderRemover); ok {
		_, _ = r.RemoveEmptyFolders(ctx, nodesDir)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nodeDirOf returns "nodes/<node>" for a key under it.
func nodeDirOf(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, nodesDir+"/")
	if !ok {
		return "", false
	}
	node, _, ok := strings.Cut(rest, "/")
	if !ok || node == "" {
		return "", false
	}
	return nodesDir + "/" + node, true
}

// sec drops what is below the second and the location: smaller documents.
func sec(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Second)
}

// clip shortens s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// folderRemover is a backend whose folders outlive their keys
// (storage.Files).
type folderRemover interface {
	RemoveEmptyFolders(ctx context.Context, prefix string) (int, error)
}
