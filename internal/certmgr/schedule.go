package certmgr

import (
	"container/heap"
	"time"
)

// The manager keeps its sets in a queue ordered by when each is next worth
// a look (a retry time, an ARI poll, the renewal point). A look pops only
// the sets whose time has come, so with 100,000 certificates a kick or a
// wake-up costs a few heap operations, not a walk over every set: the
// first hour after such a start has 100,000 first ARI polls spread over
// it, each of which used to walk every set. One full walk every
// CheckInterval (rebuilding the queue) guards against a set whose change
// forgot to queue it.

// schedule is a min-heap of states by their wake time; callers hold
// Manager.mu.
type schedule []*state

func (s schedule) Len() int           { return len(s) }
func (s schedule) Less(i, j int) bool { return s[i].wakeAt.Before(s[j].wakeAt) }
func (s schedule) Swap(i, j int) {
	s[i], s[j] = s[j], s[i]
	s[i].qidx, s[j].qidx = i+1, j+1
}

// Push adds a state; use heap.Push.
func (s *schedule) Push(x any) {
	st := x.(*state)
	*s = append(*s, st)
	st.qidx = len(*s)
}

// Pop removes the last state; use heap.Pop.
func (s *schedule) Pop() any {
	old := *s
	st := old[len(old)-1]
	old[len(old)-1] = nil
	*s = old[:len(old)-1]
	st.qidx = 0
	return st
}

// wakeAt queues st for a look at t, or sooner if it is queued for an
// earlier time already; callers hold mu.
func (m *Manager) wakeAt(st *state, t time.Time) {
	if st.qidx > 0 {
		if t.Before(st.wakeAt) {
			st.wakeAt = t
			heap.Fix(&m.sched, st.qidx-1)
		}
		return
	}
	st.wakeAt = t
	heap.Push(&m.sched, st)
}

// wake queues st for the next look: something it depends on changed.
// Callers hold mu and Kick after unlocking when the look should be now.
func (m *Manager) wake(st *state) { m.wakeAt(st, time.Time{}) }

// unqueue takes st out of the queue; callers hold mu.
func (m *Manager) unqueue(st *state) {
	if st.qidx > 0 {
		heap.Remove(&m.sched, st.qidx-1)
	}
}

// due pops the states whose wake time is at or before now; with all set,
// every state, and the queue starts again empty. Callers hold mu.
func (m *Manager) due(now time.Time, all bool) []*state {
	if all {
		for _, st := range m.sched {
			st.qidx = 0
		}
		clear(m.sched)
		m.sched = m.sched[:0]
		out := make([]*state, 0, len(m.states))
		for _, st := range m.states {
			out = append(out, st)
		}
		return out
	}
	var out []*state
	for len(m.sched) > 0 && !m.sched[0].wakeAt.After(now) {
		out = append(out, heap.Pop(&m.sched).(*state))
	}
	return out
}

// nextWake is when the earliest queued state wants a look; ok is false
// with nothing queued. Callers hold mu.
func (m *Manager) nextWake() (time.Time, bool) {
	if len(m.sched) == 0 {
		return time.Time{}, false
	}
	return m.sched[0].wakeAt, true
}
