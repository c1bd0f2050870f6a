package certmgr

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zoku/zoku/internal/storage"
)

// Bounds on what a reader accepts from storage: a damaged or hostile
// document is refused, never allowed to take the memory.
const (
	maxHeaderBytes  = 1 << 20
	maxShardBytes   = 8 << 20 // uncompressed; a real shard is about 250 KB
	maxShards       = 4096
	maxNodes        = 1000
	readConcurrency = 8
)

// cachedShard is a shard as last read.
type cachedShard struct {
	digest  string
	certs   []NodeCert
	targets []NodeTarget
}

// Nodes returns every node that published under nodes/, sorted by ID,
// with this node as it is now (Self set) in place of its last document.
// Shards whose digest did not change since the last call are not read
// again. A node whose documents cannot be read in full is returned with
// what could be read and ReadError set; the error is the storage's when
// the nodes cannot be listed at all, and then only this node is returned.
func (f *Fleet) Nodes(ctx context.Context) ([]NodeStatus, error) {
	self := f.Self()
	b := f.m.opts.Store.Backend()
	keys, err := b.List(ctx, nodesDir)
	if err != nil {
		return []NodeStatus{self}, fmt.Errorf("certmgr: fleet: list %s: %w", nodesDir, err)
	}
	var dirs []string
	for _, k := range keys {
		if dir, ok := nodeDirOf(k); ok && k == dir+"/"+statusFile && dir != f.dir {
			dirs = append(dirs, dir)
		}
	}
	if len(dirs) > maxNodes {
		dirs = dirs[:maxNodes]
	}
	out := make([]NodeStatus, len(dirs))
	used := make([]map[string]cachedShard, len(dirs))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(readConcurrency, len(dirs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				out[i], used[i] = f.readNode(ctx, b, dirs[i])
			}
		}()
	}
	for i := range dirs {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	cache := map[string]cachedShard{}
	nodes := []NodeStatus{self}
	for i, n := range out {
		for k, v := range used[i] {
			cache[k] = v
		}
		if n.ID == "" || n.ID == self.ID {
			continue // unreadable header, or a copy of this node under an old folder name
		}
		nodes = append(nodes, n)
	}
	f.cacheMu.Lock()
	f.cache = cache
	f.cacheMu.Unlock()
	slices.SortFunc(nodes, func(x, y NodeStatus) int { return strings.Compare(x.ID, y.ID) })
	return nodes, nil
}

// readNode reads one node's heartbeat and shards. The map holds the
// shards read or reused, for the next call's cache.
func (f *Fleet) readNode(ctx context.Context, b storage.Backend, dir string) (NodeStatus, map[string]cachedShard) {
	used := map[string]cachedShard{}
	hdr, err := loadHeader(ctx, b, dir+"/"+statusFile)
	if errors.Is(err, fs.ErrNotExist) {
		return NodeStatus{}, used // removed since the listing
	}
	if err != nil {
		return NodeStatus{ID: strings.TrimPrefix(dir, nodesDir+"/"), ReadError: err.Error()}, used
	}
	if hdr.Schema > FleetSchema {
		hdr.ReadError = fmt.Sprintf("published by a newer zoku (schema %d); its certificates are not shown", hdr.Schema)
		hdr.Shards, hdr.TargetShard = nil, nil
		return hdr, used
	}
	if len(hdr.Shards) > maxShards {
		hdr.ReadError = fmt.Sprintf("%d shards, more than %d; certificates not shown", len(hdr.Shards), maxShards)
		return hdr, used
	}
	var problems []string
	for _, ref := range hdr.Shards {
		sh, err := f.readShard(ctx, b, dir, ref, false)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		used[ref.Key] = sh
		hdr.Certificates = append(hdr.Certificates, sh.certs...)
	}
	if ref := hdr.TargetShard; ref != nil {
		if sh, err := f.readShard(ctx, b, dir, *ref, true); err != nil {
			problems = append(problems, err.Error())
		} else {
			used[ref.Key] = sh
			hdr.Targets = sh.targets
		}
	}
	slices.SortFunc(hdr.Certificates, func(x, y NodeCert) int { return strings.Compare(x.Name, y.Name) })
	hdr.Certificates = slices.CompactFunc(hdr.Certificates, func(x, y NodeCert) bool { return x.Name == y.Name })
	hdr.ReadError = strings.Join(problems, "; ")
	return hdr, used
}

// readShard returns the shard ref names: from the cache when its digest
// is the one cached, else from storage.
func (f *Fleet) readShard(ctx context.Context, b storage.Backend, dir string, ref ShardRef, targets bool) (cachedShard, error) {
	if d, ok := nodeDirOf(ref.Key); !ok || d != dir || storage.CheckKey(ref.Key) != nil {
		return cachedShard{}, fmt.Errorf("shard key %q is outside the node's folder", ref.Key)
	}
	f.cacheMu.Lock()
	c, ok := f.cache[ref.Key]
	f.cacheMu.Unlock()
	if ok && c.digest == ref.Digest {
		return c, nil
	}
	z, err := b.Load(ctx, ref.Key)
	if err != nil {
		return cachedShard{}, fmt.Errorf("shard %s: %w", ref.Key, err)
	}
	raw, err := gunzip(z, maxShardBytes)
	if err != nil {
		return cachedShard{}, fmt.Errorf("shard %s: %w", ref.Key, err)
	}
	// Cached under the digest of what was read: a shard rewritten since
	// the heartbeat was read is read again next time.
	c = cachedShard{digest: digestOf(raw)}
	if targets {
		err = json.Unmarshal(raw, &c.targets)
	} else {
		err = json.Unmarshal(raw, &c.certs)
	}
	if err != nil {
		return cachedShard{}, fmt.Errorf("shard %s: %w", ref.Key, err)
	}
	return c, nil
}

// loadHeader reads and decodes a node's status.json.
func loadHeader(ctx context.Context, b storage.Backend, key string) (NodeStatus, error) {
	raw, err := b.Load(ctx, key)
	if err != nil {
		return NodeStatus{}, err
	}
	if len(raw) > maxHeaderBytes {
		return NodeStatus{}, fmt.Errorf("certmgr: fleet: %s is larger than %d bytes", key, maxHeaderBytes)
	}
	var n NodeStatus
	if err := json.Unmarshal(raw, &n); err != nil {
		return NodeStatus{}, fmt.Errorf("certmgr: fleet: %s: %w", key, err)
	}
	return n, nil
}

// gunzip decompresses z, refusing more than limit bytes.
func gunzip(z []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("larger than %d bytes uncompressed", limit)
	}
	return raw, nil
}

// StoredCert is what the shared storage holds for a certificate: the one
// every node should serve.
type StoredCert struct {
	Serial    string
	NotBefore time.Time
	NotAfter  time.Time
	// StoredAt and StoredBy: when and by which node or process it was
	// ordered and stored (zero and empty for one stored by lego).
	StoredAt time.Time
	StoredBy string
	// Server is the directory URL of the CA that issued it.
	Server string
	// LastError and LastAttempt are the last failed renewal, by any node.
	LastError   string
	LastAttempt time.Time
}

// Stored reads the stored certificate of name: its .json and its chain
// (the lego layout; the private key is not read). A certificate never
// stored gives an error wrapping fs.ErrNotExist. The two reads are not
// one snapshot: a renewal stored between them shows the new serial with
// the old metadata until the next read.
func (f *Fleet) Stored(ctx context.Context, name string) (StoredCert, error) {
	file := storage.SanitizedName(name)
	if file == "" || strings.HasPrefix(file, ".") {
		return StoredCert{}, fmt.Errorf("certmgr: fleet: %q is no certificate name: %w", name, fs.ErrNotExist)
	}
	b := f.m.opts.Store.Backend()
	raw, err := b.Load(ctx, certificatesDir+"/"+file+".json")
	if err != nil {
		return StoredCert{}, err
	}
	var meta storage.CertMeta
	if err := json.Unmarshal(raw, &meta); err != nil {
		return StoredCert{}, fmt.Errorf("certmgr: fleet: %s.json: %w", file, err)
	}
	chain, err := b.Load(ctx, certificatesDir+"/"+file+".crt")
	if err != nil {
		return StoredCert{}, err
	}
	block, _ := pem.Decode(chain)
	if block == nil || block.Type != "CERTIFICATE" {
		return StoredCert{}, fmt.Errorf("certmgr: fleet: %s.crt holds no PEM certificate", file)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return StoredCert{}, fmt.Errorf("certmgr: fleet: %s.crt: %w", file, err)
	}
	return StoredCert{
		Serial: leaf.SerialNumber.Text(16), NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(),
		StoredAt: meta.StoredAt, StoredBy: meta.StoredBy, Server: meta.Server,
		LastError: clip(meta.LastError, maxErrorLen), LastAttempt: meta.LastAttempt,
	}, nil
}

// LockHolder returns who holds the issuing lock of name ("" when free).
// It fails with errors.ErrUnsupported when the storage cannot tell.
func (f *Fleet) LockHolder(ctx context.Context, name string) (string, error) {
	li, ok := f.m.opts.Store.Backend().(storage.LockInspector)
	if !ok {
		return "", fmt.Errorf("certmgr: fleet: the storage cannot tell lock holders: %w", errors.ErrUnsupported)
	}
	return li.LockHolder(ctx, lockName(name))
}
