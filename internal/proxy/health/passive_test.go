package health

import (
	"errors"
	"testing"
	"time"
)

func TestPassive(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	policy := &Passive{MaxFailures: 3, Window: 10 * time.Second, Cooldown: 30 * time.Second}

	type event struct {
		at      time.Duration
		fail    bool // else success
		tripped bool // RecordFailure's expected result
	}
	tests := []struct {
		name   string
		policy *Passive
		events []event
		check  time.Duration // when to look
		wantUp bool
	}{
		{"three in window trip", policy, []event{{0, true, false}, {time.Second, true, false}, {2 * time.Second, true, true}}, 3 * time.Second, false},
		{"cooldown ends", policy, []event{{0, true, false}, {time.Second, true, false}, {2 * time.Second, true, true}}, 32 * time.Second, true},
		{"just before cooldown end", policy, []event{{0, true, false}, {0, true, false}, {0, true, true}}, 30*time.Second - 1, false},
		{"spread over more than window", policy, []event{{0, true, false}, {6 * time.Second, true, false}, {11 * time.Second, true, false}}, 12 * time.Second, true},
		{"new run after window trips", policy, []event{{0, true, false}, {11 * time.Second, true, false}, {12 * time.Second, true, false}, {13 * time.Second, true, true}}, 14 * time.Second, false},
		{"success resets the run", policy, []event{{0, true, false}, {time.Second, true, false}, {2 * time.Second, false, false}, {3 * time.Second, true, false}}, 4 * time.Second, true},
		{"zero policy uses defaults", &Passive{}, []event{{0, true, false}, {0, true, false}, {9 * time.Second, true, true}}, 38 * time.Second, false},
		{"nil policy never trips", nil, []event{{0, true, false}, {0, true, false}, {0, true, false}, {0, true, false}}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{url: "http://x"}
			for i, e := range tt.events {
				if !e.fail {
					s.RecordSuccess()
					continue
				}
				if got := s.RecordFailure(at(e.at), tt.policy, errors.New("connection refused")); got != e.tripped {
					t.Errorf("event %d: RecordFailure = %v, want %v", i, got, e.tripped)
				}
			}
			if got := s.Available(at(tt.check)); got != tt.wantUp {
				t.Errorf("Available(+%v) = %v, want %v", tt.check, got, tt.wantUp)
			}
			if got := s.Status(at(tt.check)).LastError; got != "connection refused" {
				t.Errorf("LastError = %q, want %q", got, "connection refused")
			}
		})
	}
}

func TestActiveAndPassiveAreIndependent(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	p := &Passive{MaxFailures: 1, Cooldown: time.Minute}
	s := &Server{url: "http://x"}

	s.RecordFailure(t0, p, errors.New("refused"))
	if changed := s.SetActive(true, t0, nil); changed {
		t.Errorf("SetActive(up) on an up server: changed = true, want false")
	}
	if s.Available(t0.Add(time.Second)) {
		t.Errorf("a passing probe ended the passive cooldown, want it kept")
	}
	if changed := s.SetActive(false, t0, errors.New("probe answered 500")); !changed {
		t.Errorf("SetActive(down): changed = false, want true")
	}
	if s.Available(t0.Add(2 * time.Minute)) {
		t.Errorf("cooldown end overrode a failing probe, want down")
	}
	st := s.Status(t0.Add(2 * time.Minute))
	if st.ActiveUp || st.LastError != "probe answered 500" || !st.LastCheck.Equal(t0) || !st.DownUntil.IsZero() {
		t.Errorf("Status = %+v, want active down, last error from the probe, last check at t0, no cooldown", st)
	}
	s.SetActive(true, t0.Add(2*time.Minute), nil)
	if st := s.Status(t0.Add(2 * time.Minute)); !st.Up || st.LastError != "" {
		t.Errorf("after a passing probe: Status = %+v, want up with no last error", st)
	}
}
