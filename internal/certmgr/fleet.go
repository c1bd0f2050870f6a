package certmgr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// This file and fleetpublish.go publish what this node serves into the
// shared storage, so that the admin API of any node can show the whole
// fleet in one call (GET /api/v1/fleet); fleetread.go reads it back.
// Layout, one folder per node under nodes/:
//
//	nodes/<node>/status.json           heartbeat: identity, counts, the shard list
//	nodes/<node>/certs-<n>-<i>.json.gz  certificates, hashed into n shards
//	nodes/<node>/targets.json.gz        deploy targets
//
// The heartbeat is small (about 1 KB whatever the number of certificates)
// and rewritten every interval. The certificates are looked at after each
// certificate event and every refreshEvery (next renewals move with ARI
// answers, which are no events); a shard is rewritten only when its
// content changed, and every shard once an hour (a node whose folder was
// removed while it was away puts it back). Shards hold at most
// maxShardCerts certificates so that none comes near etcd's request limit
// (1.5 MiB by default): 100,000 certificates are 128 shards of about 45 KB.

// FleetSchema is the version of the documents under nodes/; a reader
// skips documents of a newer schema.
const FleetSchema = 1

// Node states in the fleet view.
const (
	NodeLive    = "live"
	NodeStale   = "stale"   // no heartbeat for three intervals
	NodeStopped = "stopped" // it said goodbye when it stopped
)

const (
	nodesDir         = "nodes"
	certificatesDir  = "certificates" // the lego layout's, as lockName
	statusFile       = "status.json"
	targetsFile      = "targets.json.gz"
	maxShardCerts    = 1000
	fullRewriteEvery = time.Hour
	refreshEvery     = time.Minute
	gcEvery          = 5 * time.Minute
	// publishDuty bounds the share of time publishing after events
	// takes: the next event-driven publish waits publishDuty times as
	// long as the last one took.
	publishDuty  = 20
	maxReasonLen = 200
	maxErrorLen  = 500
	// minStaleAfter keeps a node with a very short interval (tests) from
	// flapping between live and stale.
	minStaleAfter = 30 * time.Second
)

// NodeStatus is one node as it published itself under nodes/<node>/.
type NodeStatus struct {
	// Schema is FleetSchema of the writer.
	Schema int `json:"schema"`
	// ID names the node: the manager's Holder, "<hostname>:<pid>" unless
	// set; the same name appears as StoredBy and as lock holder.
	ID string `json:"id"`
	// Version is the zoku version the node runs.
	Version string `json:"version,omitempty"`
	// Started is when the node started publishing.
	Started time.Time `json:"started"`
	// Heartbeat is when the node last published (its clock).
	Heartbeat time.Time `json:"heartbeat"`
	// IntervalSeconds is how often the node publishes.
	IntervalSeconds float64 `json:"intervalSeconds"`
	// AdminURL is the node's admin listener, if it has one.
	AdminURL string `json:"adminUrl,omitempty"`
	// Stopped is set by a node that shut down cleanly.
	Stopped bool `json:"stopped,omitempty"`
	// CertificateCount and Failing count the node's certificates and
	// those whose last order failed.
	CertificateCount int `json:"certificateCount"`
	Failing          int `json:"failing"`
	// Shards list the certificate documents; TargetShard the targets'.
	Shards      []ShardRef `json:"shards"`
	TargetShard *ShardRef  `json:"targetShard,omitempty"`

	// Certificates (sorted by name) and Targets are filled from the
	// shards by Nodes and Self.
	Certificates []NodeCert   `json:"-"`
	Targets      []NodeTarget `json:"-"`
	// ReadError says what could not be read of this node (a shard that is
	// missing or damaged); what could be read is shown.
	ReadError string `json:"-"`
	// Self is set on the node that answers.
	Self bool `json:"-"`
}

// ShardRef names one shard document and the SHA-256 (hex, 32 digits) of
// its uncompressed JSON: a reader loads only shards it has not seen.
type ShardRef struct {
	Key    string `json:"key"`
	Digest string `json:"digest"`
	Count  int    `json:"count"`
}

// NodeCert is one certificate as a node serves it. Times are UTC, to the
// second; zero when unknown.
type NodeCert struct {
	Name string `json:"name"`
	// Serial (hex) of the certificate the node serves; empty when none.
	Serial      string    `json:"serial,omitempty"`
	NotAfter    time.Time `json:"notAfter,omitzero"`
	NextRenewal time.Time `json:"nextRenewal,omitzero"`
	// NextReason says why then, in words.
	NextReason string    `json:"nextReason,omitempty"`
	Failures   int       `json:"failures,omitempty"`
	RetryAt    time.Time `json:"retryAt,omitzero"`
	LastError  string    `json:"lastError,omitempty"`
}

// NodeTarget is one deploy target as a node runs it: the one status
// record of a target, which the deploy runner fills (deploy.TargetStatus),
// the admin API shows (admin.TargetStatus) and the fleet publishes.
type NodeTarget struct {
	// Name of the target (its key under targets:).
	Name string `json:"name"`
	// Type: netscaler, haproxy, nginx or exec.
	Type string `json:"type"`
	// Certificates are the certificate names the target needs.
	Certificates []string `json:"certificates"`
	// LastDeploy is when the last run of the target ended.
	LastDeploy time.Time `json:"lastDeploy"`
	// LastSuccess is when a run last succeeded.
	LastSuccess time.Time `json:"lastSuccess"`
	// LastResult is "ok", "failed", or empty before the first run.
	LastResult string `json:"lastResult"`
	// LastError is the last run's error, if it failed.
	LastError string `json:"lastError,omitempty"`
	// Failures counts failed runs since the last success.
	Failures int `json:"failures"`
	// ServedSerial is the serial (hex) the target was last seen serving;
	// for several certificates, their serials comma-separated in the order
	// of Certificates.
	ServedSerial string `json:"servedSerial,omitempty"`
	// NextRun is when the runner looks at the target next.
	NextRun time.Time `json:"nextRun"`
}

// State is NodeStopped for a node that said so, NodeStale when its
// heartbeat is older than three of its intervals (30 s at least) at now,
// else NodeLive. Nodes are assumed to keep their clocks in step (NTP), as
// certificate validity needs anyway.
func (n NodeStatus) State(now time.Time) string {
	switch {
	case n.Self:
		return NodeLive
	case n.Stopped:
		return NodeStopped
	case now.Sub(n.Heartbeat) > n.StaleAfter():
		return NodeStale
	}
	return NodeLive
}

// StaleAfter is how old the node's heartbeat may grow before it shows as
// stale: three of its intervals, 30 s at least.
func (n NodeStatus) StaleAfter() time.Duration {
	return max(time.Duration(3*n.IntervalSeconds*float64(time.Second)), minStaleAfter)
}

// FleetOptions configure a Fleet. Manager is required.
type FleetOptions struct {
	// Manager is the node's certificate manager: its Holder is the node's
	// ID, its store the shared storage, its statuses what is published.
	Manager *Manager
	// Targets, when set, returns the node's deploy targets.
	Targets func() []NodeTarget
	// Version is the zoku version published.
	Version string
	// AdminURL, when set, returns the node's admin URL ("" for none).
	AdminURL func() string
	// Interval between heartbeats; zero means 10 s. Certificate events
	// publish sooner (one second apart at most).
	Interval time.Duration
	// StoppedTTL is how long the documents of a node that stopped cleanly
	// stay; zero means one hour. StaleTTL is the same for a node that
	// vanished; zero means 24 hours. Live nodes remove older ones.
	StoppedTTL, StaleTTL time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Fleet publishes this node's status into the shared storage and reads
// every node's. Create it with NewFleet; Start publishes in the
// background until Close.
type Fleet struct {
	opts    FleetOptions
	log     *slog.Logger
	m       *Manager
	id      string
	dir     string // nodes/<node>
	started time.Time
	kick    chan struct{}

	dirty atomic.Bool // a certificate event came since the last look

	pubMu       sync.Mutex              // serialises publish
	written     map[string]string       // guarded by pubMu; key -> digest stored
	certRefs    []ShardRef              // guarded by pubMu; the certificate shards stored
	stored      map[string]encodedShard // guarded by pubMu; the same, with their certificates
	certCount   int                     // guarded by pubMu
	certFailing int                     // guarded by pubMu
	lastEncode  time.Time               // guarded by pubMu; last look at the certificates
	lastFull    time.Time               // guarded by pubMu; last rewrite of every shard
	lastGC      time.Time               // guarded by pubMu
	failing     bool                    // guarded by pubMu; the last publish failed (logged once)

	cacheMu sync.Mutex
	cache   map[string]cachedShard // guarded by cacheMu; shard key -> last read

	runMu  sync.Mutex
	cancel context.CancelFunc // guarded by runMu
	done   chan struct{}      // guarded by runMu
}

// NewFleet returns a Fleet for opts.Manager's node. It does no I/O.
func NewFleet(opts FleetOptions) *Fleet {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.StoppedTTL <= 0 {
		opts.StoppedTTL = time.Hour
	}
	if opts.StaleTTL <= 0 {
		opts.StaleTTL = 24 * time.Hour
	}
	id := opts.Manager.Holder()
	return &Fleet{
		opts: opts, log: opts.Logger.With("component", "fleet"), m: opts.Manager, id: id,
		dir: nodesDir + "/" + nodeDirName(id), started: opts.Now().UTC(), kick: make(chan struct{}, 1),
		written: map[string]string{}, cache: map[string]cachedShard{},
	}
}

// Holder is the name this manager gives itself in what it stores
// (StoredBy) and in the fleet view.
func (m *Manager) Holder() string { return m.opts.Holder }

// ID is the node's name in the fleet view.
func (f *Fleet) ID() string { return f.id }

// nodeDirName turns a node ID into one key segment: letters, digits, '.',
// '-' and '_' are kept (but not a leading '.'), anything else becomes '-',
// and a short hash of the ID follows when anything changed, so that two
// IDs never share a folder.
func nodeDirName(id string) string {
	var b strings.Builder
	for _, r := range id {
		if r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := b.String()
	if len(s) > 100 {
		s = s[:100]
	}
	// Storage backends hide names that start with a dot (their temporary
	// files).
	if strings.HasPrefix(s, ".") {
		s = "-" + s[1:]
	}
	if s != id || s == "" {
		sum := sha256.Sum256([]byte(id))
		s += "." + hex.EncodeToString(sum[:4])
	}
	return s
}

// Start publishes at once, then every Interval and after each
// certificate event, until Close.
func (f *Fleet) Start(ctx context.Context) {
	f.runMu.Lock()
	defer f.runMu.Unlock()
	if f.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f.cancel, f.done = cancel, make(chan struct{})
	unsub := f.m.Subscribe(func(Event) { f.dirty.Store(true); f.Kick() })
	go func() {
		defer close(f.done)
		defer unsub()
		defer f.recoverPanic()
		f.run(ctx)
	}()
}

// Close stops publishing, marks the node stopped in storage (5 s at
// most) and waits. It is safe on a nil or unstarted Fleet.
func (f *Fleet) Close() error {
	if f == nil {
		return nil
	}
	f.runMu.Lock()
	cancel, done := f.cancel, f.done
	f.cancel = nil
	f.runMu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-done
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	return f.publish(ctx, false, true)
}

// Kick asks for a publish soon (one second after the last at the
// earliest).
func (f *Fleet) Kick() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *Fleet) recoverPanic() {
	if r := recover(); r != nil {
		f.log.Error("panic in fleet publishing", "panic", r)
	}
}

func (f *Fleet) run(ctx context.Context) {
	tick := time.NewTicker(f.opts.Interval)
	defer tick.Stop()
	for {
		began := time.Now()
		_ = f.publish(ctx, false, false)
		last := time.Now()
		// Events come in bursts (a restart loads every certificate): one
		// publish per second at most, and no more than 1/publishDuty of
		// the time, as a look at 100,000 certificates takes a while.
		gap := max(time.Second, publishDuty*last.Sub(began))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-f.kick:
			if wait := gap - time.Since(last); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
		}
	}
}
