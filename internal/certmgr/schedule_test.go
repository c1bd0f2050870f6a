package certmgr

import (
	"context"
	"crypto/x509"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/storage"
)

// scheduledManager returns a manager holding n served sets, none due: a
// 90-day certificate issued at now, whose next ARI poll is i seconds
// after the first hour.
func scheduledManager(n int, now *time.Time) *Manager {
	m := New(Options{Now: func() time.Time { return *now }, CheckInterval: 24 * time.Hour})
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range n {
		leaf := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), NotBefore: *now, NotAfter: now.Add(90 * 24 * time.Hour)}
		st := &state{set: Set{Name: fmt.Sprintf("h%d.example.test", i)}, bundle: &storage.Bundle{}, leaf: leaf, jitter: 0.5,
			ari: &storage.RenewalInfo{NextPoll: now.Add(time.Hour + time.Duration(i)*time.Second)}}
		m.add(st)
	}
	return m
}

func TestScheduleLooksOnlyAtDueSets(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	m := scheduledManager(1000, &now)
	ctx := context.Background()

	m.CheckNow(ctx) // the first look is at every set; none is due
	m.mu.Lock()
	queued := len(m.sched)
	m.mu.Unlock()
	if queued != 1000 {
		t.Fatalf("after the first look %d sets are queued, want all 1000", queued)
	}

	// 10.5 s into the polls: sets 0..10 are due, and only they are popped.
	now = now.Add(time.Hour + 10*time.Second + 500*time.Millisecond)
	m.mu.Lock()
	due := m.due(now, false)
	for _, st := range due {
		m.wakeAt(st, st.wakeAt) // put them back for the look below
	}
	m.mu.Unlock()
	if len(due) != 11 {
		t.Fatalf("due popped %d sets, want the 11 whose poll time came", len(due))
	}

	m.CheckNow(ctx)
	polled := 0
	m.mu.Lock()
	for _, st := range m.states {
		if st.ari.NextPoll.Equal(now.Add(time.Hour)) { // an unreachable CA: next poll in an hour
			polled++
		}
	}
	queued = len(m.sched)
	m.mu.Unlock()
	if polled != 11 {
		t.Errorf("%d sets polled ARI, want 11", polled)
	}
	if queued != 1000 {
		t.Errorf("%d sets queued after the polls, want 1000 (a finished poll queues its set again)", queued)
	}

	// A set no longer managed leaves the queue.
	m.Manage(ctx, nil)
	m.mu.Lock()
	queued = len(m.sched)
	m.mu.Unlock()
	if queued != 0 {
		t.Errorf("%d sets queued after Manage(nil), want 0", queued)
	}
}

// TestScheduleHeap checks the queue against a sorted reference under
// random wakes, earlier wakes and removals.
func TestScheduleHeap(t *testing.T) {
	m := New(Options{})
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	ref := map[*state]time.Time{}
	var all []*state
	for range 2000 {
		switch op := r.IntN(10); {
		case op < 6 || len(all) == 0:
			st := &state{}
			at := base.Add(time.Duration(r.IntN(1e6)) * time.Millisecond)
			m.wakeAt(st, at)
			ref[st] = at
			all = append(all, st)
		case op < 9:
			st := all[r.IntN(len(all))]
			at := base.Add(time.Duration(r.IntN(1e6)) * time.Millisecond)
			m.wakeAt(st, at)
			if cur, ok := ref[st]; !ok || at.Before(cur) {
				ref[st] = at // a wake only ever moves a queued set earlier
			}
		default:
			st := all[r.IntN(len(all))]
			m.unqueue(st)
			delete(ref, st)
		}
	}
	if len(m.sched) != len(ref) {
		t.Fatalf("queue holds %d sets, reference %d", len(m.sched), len(ref))
	}
	var want []time.Time
	for _, at := range ref {
		want = append(want, at)
	}
	slices.SortFunc(want, func(a, b time.Time) int { return a.Compare(b) })
	got := m.due(base.Add(time.Hour), false)
	if len(got) != len(want) {
		t.Fatalf("due popped %d, want %d", len(got), len(want))
	}
	for i, st := range got {
		if !st.wakeAt.Equal(want[i]) || st.qidx != 0 {
			t.Fatalf("pop %d: wake %v (qidx %d), want %v in order", i, st.wakeAt, st.qidx, want[i])
		}
	}
}

// BenchmarkCheck is one look by the manager at 100,000 served sets of
// which none is due: "kick" is a look between full looks (an event, a
// finished ARI poll, a timer), "full" the look at every set that each
// kick used to be.
func BenchmarkCheck(b *testing.B) {
	for _, full := range []bool{false, true} {
		name := map[bool]string{false: "kick", true: "full"}[full]
		b.Run(name+"/n=100000", func(b *testing.B) {
			now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
			m := scheduledManager(100_000, &now)
			ctx := context.Background()
			m.CheckNow(ctx)
			b.ResetTimer()
			for b.Loop() {
				if full {
					m.mu.Lock()
					m.nextFull = time.Time{}
					m.mu.Unlock()
				}
				m.check(ctx)
			}
		})
	}
}
