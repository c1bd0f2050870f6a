package admin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zoku/zoku/internal/certmgr"
)

// Fleet is every node that shares this node's storage, as the admin sees
// it; *certmgr.Fleet is one.
type Fleet interface {
	// Nodes returns every node's published status, this one live.
	Nodes(ctx context.Context) ([]certmgr.NodeStatus, error)
	// Stored reads the stored certificate of a name.
	Stored(ctx context.Context, name string) (certmgr.StoredCert, error)
	// LockHolder names who holds a certificate's issuing lock; it fails
	// with errors.ErrUnsupported when the storage cannot tell.
	LockHolder(ctx context.Context, name string) (string, error)
}

var _ Fleet = (*certmgr.Fleet)(nil)

// Cell states: how the certificate a node serves compares with the one
// stored, which every node should serve.
const (
	CellCurrent = "current" // the stored certificate
	CellBehind  = "behind"  // an older one: the node missed the renewal
	CellAhead   = "ahead"   // a newer one than stored (storage rolled back?)
	CellDiffers = "differs" // another certificate of the same expiry
	CellNone    = "none"    // the node manages the name but serves nothing
	CellUnknown = "unknown" // nothing stored (or unreadable) to compare with
)

// Lock lookups of a fleet view.
const (
	LocksChecked     = "checked"     // every certificate shown
	LocksSkipped     = "skipped"     // ?locks=false
	LocksUnsupported = "unsupported" // the storage cannot tell
	LocksPartial     = "partial"     // some lookups failed or ran out of time
)

// Fleet view limits: the nodes are read within fleetNodesTimeout; then a
// page of certificates reads each one's stored state and lock,
// concurrently, within what is left of fleetTimeout. When the nodes
// cannot be listed the storage is taken as down and nothing more is read
// from it, so the view answers within fleetNodesTimeout.
const (
	fleetDefaultLimit = 1000
	fleetMaxLimit     = 5000
	fleetConcurrency  = 16
	fleetTimeout      = 30 * time.Second
	fleetNodesTimeout = 5 * time.Second
)

// FleetView is GET /api/v1/fleet: every node, and every certificate's and
// target's state on every node. docs/admin.md describes each field.
type FleetView struct {
	Now          time.Time     `json:"now"`
	Self         string        `json:"self"`
	Summary      FleetSummary  `json:"summary"`
	Nodes        []FleetNode   `json:"nodes"`
	Certificates []FleetCert   `json:"certificates"`
	Targets      []FleetTarget `json:"targets"`
	// Next, when set, is the ?after= of the next page.
	Next     string   `json:"next,omitempty"`
	Locks    string   `json:"locks"`
	Warnings []string `json:"warnings"`
}

// FleetSummary counts what needs a look. Nodes to Failing cover every
// certificate; Shown to Locked only the certificates of this page (their
// stored state is read for the page only).
type FleetSummary struct {
	Nodes         int `json:"nodes"`
	Live          int `json:"live"`
	Stale         int `json:"stale"`
	Stopped       int `json:"stopped"`
	Certificates  int `json:"certificates"`
	SerialsDiffer int `json:"serialsDiffer"`
	Failing       int `json:"failing"`
	Shown         int `json:"shown"`
	Behind        int `json:"behind"`
	Locked        int `json:"locked"`
	TargetsBehind int `json:"targetsBehind"`
	TargetsFailed int `json:"targetsFailed"`
}

// FleetNode is one node.
type FleetNode struct {
	ID                  string     `json:"id"`
	State               string     `json:"state"`
	Self                bool       `json:"self"`
	Version             string     `json:"version,omitempty"`
	AdminURL            string     `json:"adminUrl,omitempty"`
	Started             *time.Time `json:"started,omitempty"`
	Heartbeat           *time.Time `json:"heartbeat,omitempty"`
	HeartbeatAgeSeconds float64    `json:"heartbeatAgeSeconds"`
	StaleAfterSeconds   float64    `json:"staleAfterSeconds"`
	Certificates        int        `json:"certificates"`
	Failing             int        `json:"failing"`
	ReadError           string     `json:"readError,omitempty"`
}

// FleetCert is one certificate: what is stored, who holds its lock, and
// what each node that manages it serves.
type FleetCert struct {
	Name        string       `json:"name"`
	Stored      *FleetStored `json:"stored"`
	StoredError string       `json:"storedError,omitempty"`
	LockHolder  string       `json:"lockHolder,omitempty"`
	// Agree: every live node serves the stored certificate.
	Agree bool        `json:"agree"`
	Nodes []FleetCell `json:"nodes"`
}

// FleetStored is the stored certificate.
type FleetStored struct {
	Serial      string     `json:"serial"`
	NotBefore   time.Time  `json:"notBefore"`
	NotAfter    time.Time  `json:"notAfter"`
	StoredAt    *time.Time `json:"storedAt,omitempty"`
	StoredBy    string     `json:"storedBy,omitempty"`
	CA          string     `json:"ca,omitempty"`
	LastError   string     `json:"lastError,omitempty"`
	LastAttempt *time.Time `json:"lastAttempt,omitempty"`
}

// FleetCell is one certificate on one node.
type FleetCell struct {
	Node              string     `json:"node"`
	State             string     `json:"state"`
	Serial            string     `json:"serial,omitempty"`
	NotAfter          *time.Time `json:"notAfter,omitempty"`
	NextRenewal       *time.Time `json:"nextRenewal,omitempty"`
	NextRenewalReason string     `json:"nextRenewalReason,omitempty"`
	Failures          int        `json:"failures"`
	RetryAt           *time.Time `json:"retryAt,omitempty"`
	LastError         string     `json:"lastError,omitempty"`
}

// FleetTarget is one deploy target on every node that runs it.
type FleetTarget struct {
	Name  string            `json:"name"`
	Nodes []FleetTargetCell `json:"nodes"`
}

// FleetTargetCell is one target on one node. State compares the serials
// the target was seen serving with the stored ones.
type FleetTargetCell struct {
	Node         string     `json:"node"`
	State        string     `json:"state"`
	Type         string     `json:"type"`
	Certificates []string   `json:"certificates"`
	LastResult   string     `json:"lastResult"`
	LastDeploy   *time.Time `json:"lastDeploy,omitempty"`
	LastSuccess  *time.Time `json:"lastSuccess,omitempty"`
	LastError    string     `json:"lastError,omitempty"`
	Failures     int        `json:"failures"`
	ServedSerial string     `json:"servedSerial,omitempty"`
	NextRun      *time.Time `json:"nextRun,omitempty"`
}

// fleetQuery is a fleet request's parameters.
type fleetQuery struct {
	limit int
	after string
	locks bool
}

func parseFleetQuery(r *http.Request) (fleetQuery, error) {
	q := fleetQuery{limit: fleetDefaultLimit, locks: true}
	v := r.URL.Query()
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > fleetMaxLimit {
			return q, fmt.Errorf("limit %q must be a number from 1 to %d", s, fleetMaxLimit)
		}
		q.limit = n
	}
	q.after = v.Get("after")
	switch s := v.Get("locks"); s {
	case "", "true":
	case "false":
		q.locks = false
	default:
		return q, fmt.Errorf("locks %q must be true or false", s)
	}
	return q, nil
}

func (a *Admin) getFleet(w http.ResponseWriter, r *http.Request) {
	fl := a.sources().Fleet
	if fl == nil {
		writeProblem(w, r, Problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable,
			Detail: "this process publishes no fleet status; the fleet view is served by zoku run"})
		return
	}
	q, err := parseFleetQuery(r)
	if err != nil {
		writeProblem(w, r, Problem{Type: ProblemBadRequest, Status: http.StatusBadRequest, Detail: err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), fleetTimeout)
	defer cancel()
	writeJSON(w, http.StatusOK, a.fleetView(ctx, fl, q))
}

// fleetView builds the view. It never fails: what cannot be read is
// named in Warnings (and the node's ReadError, the certificate's
// StoredError).
func (a *Admin) fleetView(ctx context.Context, fl Fleet, q fleetQuery) FleetView {
	now := a.opts.Now()
	v := FleetView{Now: now.UTC(), Nodes: []FleetNode{}, Certificates: []FleetCert{}, Targets: []FleetTarget{}, Warnings: []string{}, Locks: LocksChecked}
	nctx, cancel := context.WithTimeout(ctx, fleetNodesTimeout)
	nodes, err := fl.Nodes(nctx)
	cancel()
	storageDown := err != nil
	if storageDown {
		v.Warnings = append(v.Warnings, "only this node is shown, and nothing stored: "+err.Error())
	}
	byName, states := v.addNodes(nodes, now)
	v.Summary.Nodes = len(nodes)
	names := make([]string, 0, len(byName))
	for name, cells := range byName {
		names = append(names, name)
		if serialsDiffer(cells) {
			v.Summary.SerialsDiffer++
		}
		if slices.ContainsFunc(cells, func(c cellSource) bool { return c.live && c.c.Failures > 0 }) {
			v.Summary.Failing++
		}
	}
	slices.Sort(names)
	v.Summary.Certificates = len(names)
	start, _ := slices.BinarySearch(names, q.after)
	if q.after != "" && start < len(names) && names[start] == q.after {
		start++
	}
	page := names[start:min(len(names), start+q.limit)]
	if start+len(page) < len(names) && len(page) > 0 {
		v.Next = page[len(page)-1]
	}

	// The targets' certificates are compared with storage too.
	want := slices.Clone(page)
	for _, n := range nodes {
		for _, t := range n.Targets {
			want = append(want, t.Certificates...)
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	var (
		stored    map[string]certmgr.StoredCert
		storedErr = map[string]string{}
		lockOf    map[string]string
	)
	if storageDown {
		if q.locks {
			v.Locks = LocksPartial
		} else {
			v.Locks = LocksSkipped
		}
		for _, name := range page {
			storedErr[name] = "not read: the storage did not answer"
		}
	} else {
		stored, storedErr, lockOf, v.Locks = a.readStored(ctx, fl, want, page, q.locks)
	}
	if n := len(storedErr); n > 0 && !storageDown {
		first := slices.Min(slices.Collect(maps.Keys(storedErr)))
		v.Warnings = append(v.Warnings, fmt.Sprintf("the stored state of %d certificates could not be read (%s: %s)", n, first, storedErr[first]))
	}

	for _, name := range page {
		fc := FleetCert{Name: name, LockHolder: lockOf[name], StoredError: storedErr[name], Nodes: []FleetCell{}}
		if s, ok := stored[name]; ok {
			fc.Stored = &FleetStored{Serial: s.Serial, NotBefore: s.NotBefore, NotAfter: s.NotAfter, StoredAt: timePtr(s.StoredAt),
				StoredBy: s.StoredBy, CA: s.Server, LastError: s.LastError, LastAttempt: timePtr(s.LastAttempt)}
		}
		live := 0
		for _, src := range byName[name] {
			c := src.c
			cell := FleetCell{Node: src.node, State: cellState(c, fc.Stored), Serial: c.Serial, NotAfter: timePtr(c.NotAfter),
				NextRenewal: timePtr(c.NextRenewal), NextRenewalReason: c.NextReason, Failures: c.Failures, LastError: c.LastError}
			if c.Failures > 0 {
				cell.RetryAt = timePtr(c.RetryAt)
			}
			if src.live {
				live++
				if cell.State == CellBehind {
					v.Summary.Behind++
				}
			}
			fc.Nodes = append(fc.Nodes, cell)
		}
		fc.Agree = live > 0 && agree(fc, byName[name])
		if fc.LockHolder != "" {
			v.Summary.Locked++
		}
		v.Certificates = append(v.Certificates, fc)
	}
	v.Summary.Shown = len(v.Certificates)
	v.Targets = fleetTargets(nodes, stored, states, &v.Summary)
	return v
}

// cellSource is one node's certificate, with whether the node is live.
type cellSource struct {
	node string
	live bool
	c    certmgr.NodeCert
}

// addNodes lists nodes in v and counts them by state; it returns every
// node's certificates by name, and each node's state.
func (v *FleetView) addNodes(nodes []certmgr.NodeStatus, now time.Time) (map[string][]cellSource, map[string]string) {
	states := make(map[string]string, len(nodes))
	byName := map[string][]cellSource{}
	for _, n := range nodes {
		st := n.State(now)
		states[n.ID] = st
		if n.Self {
			v.Self = n.ID
		}
		fn := FleetNode{ID: n.ID, State: st, Self: n.Self, Version: n.Version, AdminURL: n.AdminURL,
			Started: timePtr(n.Started), Heartbeat: timePtr(n.Heartbeat), StaleAfterSeconds: n.StaleAfter().Seconds(),
			Certificates: n.CertificateCount, Failing: n.Failing, ReadError: n.ReadError}
		if !n.Heartbeat.IsZero() {
			fn.HeartbeatAgeSeconds = max(0, now.Sub(n.Heartbeat).Seconds())
		}
		v.Nodes = append(v.Nodes, fn)
		switch st {
		case certmgr.NodeLive:
			v.Summary.Live++
		case certmgr.NodeStale:
			v.Summary.Stale++
		case certmgr.NodeStopped:
			v.Summary.Stopped++
		}
		for _, c := range n.Certificates {
			byName[c.Name] = append(byName[c.Name], cellSource{node: n.ID, live: st == certmgr.NodeLive, c: c})
		}
	}
	return byName, states
}

// serialsDiffer reports whether the live nodes do not all serve the same
// certificate (one serving none counts).
func serialsDiffer(cells []cellSource) bool {
	first, seen := "", false
	for _, c := range cells {
		if !c.live {
			continue
		}
		if !seen {
			first, seen = c.c.Serial, true
		} else if c.c.Serial != first {
			return true
		}
	}
	return false
}

// agree reports whether every live node serves the stored certificate,
// or, with nothing stored, the same certificate as the others.
func agree(fc FleetCert, cells []cellSource) bool {
	if fc.Stored == nil {
		return !serialsDiffer(cells) && !slices.ContainsFunc(cells, func(c cellSource) bool { return c.live && c.c.Serial == "" })
	}
	for i, c := range cells {
		if c.live && fc.Nodes[i].State != CellCurrent {
			return false
		}
	}
	return true
}

// cellState compares what a node serves with what is stored.
func cellState(c certmgr.NodeCert, s *FleetStored) string {
	switch {
	case c.Serial == "":
		return CellNone
	case s == nil:
		return CellUnknown
	case strings.EqualFold(c.Serial, s.Serial):
		return CellCurrent
	case c.NotAfter.Before(s.NotAfter):
		return CellBehind
	case c.NotAfter.After(s.NotAfter):
		return CellAhead
	}
	return CellDiffers
}

// readStored reads the stored state of names and, when locks, the lock
// holder of the page's names, fleetConcurrency at a time. It returns
// what it read, the errors by name (a certificate never stored is no
// error), the holders, and how the lock lookups went.
func (a *Admin) readStored(ctx context.Context, fl Fleet, names, page []string, locks bool) (map[string]certmgr.StoredCert, map[string]string, map[string]string, string) {
	var (
		mu       sync.Mutex
		stored   = make(map[string]certmgr.StoredCert, len(names))
		errs     = map[string]string{}
		holders  = map[string]string{}
		lockErrs int
	)
	lockState := LocksChecked
	if !locks {
		lockState = LocksSkipped
	}
	onPage := make(map[string]bool, len(page))
	for _, n := range page {
		onPage[n] = true
	}
	var unsupported bool
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range min(fleetConcurrency, len(names)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range jobs {
				s, err := fl.Stored(ctx, name)
				var holder string
				var lerr error
				if locks && onPage[name] {
					holder, lerr = fl.LockHolder(ctx, name)
				}
				mu.Lock()
				switch {
				case err == nil:
					stored[name] = s
				case !errors.Is(err, fs.ErrNotExist):
					errs[name] = err.Error()
				}
				switch {
				case errors.Is(lerr, errors.ErrUnsupported):
					unsupported = true
				case lerr != nil:
					lockErrs++
				case holder != "":
					holders[name] = holder
				}
				mu.Unlock()
			}
		}()
	}
	for _, n := range names {
		jobs <- n
	}
	close(jobs)
	wg.Wait()
	switch {
	case !locks:
	case unsupported:
		lockState = LocksUnsupported
	case lockErrs > 0:
		lockState = LocksPartial
	}
	return stored, errs, holders, lockState
}

// fleetTargets lists every target with its state on each node that runs
// it, and counts the ones behind or failed.
func fleetTargets(nodes []certmgr.NodeStatus, stored map[string]certmgr.StoredCert, states map[string]string, sum *FleetSummary) []FleetTarget {
	byName := map[string]*FleetTarget{}
	var order []string
	for _, n := range nodes {
		for _, t := range n.Targets {
			ft, ok := byName[t.Name]
			if !ok {
				ft = &FleetTarget{Name: t.Name, Nodes: []FleetTargetCell{}}
				byName[t.Name] = ft
				order = append(order, t.Name)
			}
			cell := FleetTargetCell{Node: n.ID, State: targetState(t, stored), Type: t.Type, Certificates: t.Certificates,
				LastResult: t.LastResult, LastDeploy: timePtr(t.LastDeploy), LastSuccess: timePtr(t.LastSuccess),
				LastError: t.LastError, Failures: t.Failures, ServedSerial: t.ServedSerial, NextRun: timePtr(t.NextRun)}
			if cell.Certificates == nil {
				cell.Certificates = []string{}
			}
			if states[n.ID] == certmgr.NodeLive {
				if cell.State == CellBehind {
					sum.TargetsBehind++
				}
				if t.LastResult == "failed" {
					sum.TargetsFailed++
				}
			}
			ft.Nodes = append(ft.Nodes, cell)
		}
	}
	slices.Sort(order)
	out := make([]FleetTarget, 0, len(order))
	for _, name := range order {
		out = append(out, *byName[name])
	}
	return out
}

// targetState compares the serials a target was seen serving (one per
// certificate, comma-separated, in the order of its certificates) with
// the stored ones.
func targetState(t certmgr.NodeTarget, stored map[string]certmgr.StoredCert) string {
	if t.ServedSerial == "" || len(t.Certificates) == 0 {
		return CellNone
	}
	served := strings.Split(t.ServedSerial, ",")
	if len(served) != len(t.Certificates) {
		return CellUnknown
	}
	state := CellCurrent
	for i, name := range t.Certificates {
		s, ok := stored[name]
		switch {
		case !ok:
			state = CellUnknown
		case !strings.EqualFold(strings.TrimSpace(served[i]), s.Serial):
			return CellBehind
		}
	}
	return state
}
