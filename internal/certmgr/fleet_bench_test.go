package certmgr

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// fleetCerts returns n node certificates shaped like a real node's: a
// 36-digit serial, an ARI reason, one in a hundred failing.
func fleetCerts(n int) []NodeCert {
	rnd := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	out := make([]NodeCert, n)
	for i := range out {
		start := now.Add(time.Duration(rnd.IntN(60*24)) * time.Hour)
		c := NodeCert{
			Name:        fmt.Sprintf("host-%06d.customers.example.com", i),
			Serial:      fmt.Sprintf("%016x%016x%04x", rnd.Uint64(), rnd.Uint64(), rnd.IntN(1<<16)),
			NotAfter:    start.Add(90 * 24 * time.Hour),
			NextRenewal: start.Add(60*24*time.Hour + time.Duration(rnd.IntN(86400))*time.Second),
			NextReason:  "ARI window " + start.Add(59*24*time.Hour).Format(time.RFC3339) + " to " + start.Add(61*24*time.Hour).Format(time.RFC3339),
		}
		if i%100 == 0 {
			c.Failures, c.RetryAt = 3, now.Add(time.Hour)
			c.LastError = "acme: error: 429 :: POST :: https://acme-v02.api.letsencrypt.org/acme/new-order :: urn:ietf:params:acme:error:rateLimited :: too many certificates already issued"
		}
		out[i] = c
	}
	return out
}

// TestFleetShardsBounded checks that shards stay far under etcd's
// default request limit (1.5 MiB) at 100,000 certificates, uncompressed
// even, and that every certificate lands in exactly one shard.
func TestFleetShardsBounded(t *testing.T) {
	certs := fleetCerts(100_000)
	shards, err := encodeCertShards("nodes/n", certs, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	total := 0
	for _, sh := range shards {
		if len(sh.raw) > 1<<20 {
			t.Errorf("shard %s is %d bytes, want under 1 MiB", sh.key, len(sh.raw))
		}
		if sh.count > 2*maxShardCerts {
			t.Errorf("shard %s holds %d certificates", sh.key, sh.count)
		}
		seen[sh.key] = true
		total += sh.count
	}
	var first []NodeCert
	if err := json.Unmarshal(shards[0].raw, &first); err != nil || len(first) != shards[0].count {
		t.Fatalf("shard %s: %d certificates back (%v), want %d", shards[0].key, len(first), err, shards[0].count)
	}
	if total != len(certs) || len(shards) != 128 || len(seen) != 128 {
		t.Errorf("%d certificates in %d shards (%d keys), want %d in 128", total, len(shards), len(seen), len(certs))
	}
}

// BenchmarkFleetEncode encodes a node document of 10,000 and 100,000
// certificates (JSON, then gzip of every shard) and reports its size and
// its largest shard's.
func BenchmarkFleetEncode(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("%d", n), func(b *testing.B) {
			certs := fleetCerts(n)
			var raw, z, biggest int
			for b.Loop() {
				shards, err := encodeCertShards("nodes/n", certs, nil)
				if err != nil {
					b.Fatal(err)
				}
				raw, z, biggest = 0, 0, 0
				for _, sh := range shards {
					out, err := gzipBytes(sh.raw)
					if err != nil {
						b.Fatal(err)
					}
					raw += len(sh.raw)
					z += len(out)
					biggest = max(biggest, len(out))
				}
			}
			b.ReportMetric(float64(raw), "json-bytes")
			b.ReportMetric(float64(z), "stored-bytes")
			b.ReportMetric(float64(biggest), "max-shard-bytes")
		})
	}
}

// BenchmarkFleetDecode10k reads a 10,000-certificate node document back
// (gunzip and JSON of every shard), as a reader does on a cache miss.
func BenchmarkFleetDecode10k(b *testing.B) {
	shards, err := encodeCertShards("nodes/n", fleetCerts(10_000), nil)
	if err != nil {
		b.Fatal(err)
	}
	zs := make([][]byte, len(shards))
	for i, sh := range shards {
		if zs[i], err = gzipBytes(sh.raw); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		n := 0
		for _, z := range zs {
			raw, err := gunzip(z, maxShardBytes)
			if err != nil {
				b.Fatal(err)
			}
			var certs []NodeCert
			if err := json.Unmarshal(raw, &certs); err != nil {
				b.Fatal(err)
			}
			n += len(certs)
		}
		if n != 10_000 {
			b.Fatalf("%d certificates back", n)
		}
	}
}

// BenchmarkFleetJSONOnly10k is the JSON part of a heartbeat that looks at
// 10,000 certificates (what every minute costs when nothing changed).
func BenchmarkFleetJSONOnly10k(b *testing.B) {
	certs := fleetCerts(10_000)
	for b.Loop() {
		if _, err := encodeCertShards("nodes/n", certs, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFleetLookUnchanged10k is a look at 10,000 certificates of
// which none changed since the last one: sharding and comparing, no
// encoding.
func BenchmarkFleetLookUnchanged10k(b *testing.B) {
	certs := fleetCerts(10_000)
	shards, err := encodeCertShards("nodes/n", certs, nil)
	if err != nil {
		b.Fatal(err)
	}
	prev := map[string]encodedShard{}
	for _, sh := range shards {
		prev[sh.key] = sh
	}
	for b.Loop() {
		again, err := encodeCertShards("nodes/n", slices.Clone(certs), prev)
		if err != nil {
			b.Fatal(err)
		}
		for _, sh := range again {
			if sh.raw != nil {
				b.Fatalf("shard %s encoded again", sh.key)
			}
		}
	}
}
