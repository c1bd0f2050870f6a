package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// mirrorTimeout bounds one mirrored request.
const mirrorTimeout = 30 * time.Second

// Mirroring sends every request to its main service, whose answer the
// client gets, and a copy of a share of them to each mirror, on a
// goroutine of its own whose answer is discarded. A mirror's share is
// exact over every 100 requests (10 percent: requests 10, 20, 30...).
// Requests whose body is larger than MaxBodyBytes, and upgrades, are not
// mirrored; at most MaxInFlight copies are under way at once (more are
// dropped, never queued), each bounded by 30 s. The client never waits
// for a mirror.
type Mirroring struct {
	name     string
	main     Child
	mirrors  []*mirror
	maxBody  int64
	slots    chan struct{}
	log      *slog.Logger
	dropped  atomic.Uint64
	inFlight atomic.Int64
}

type mirror struct {
	c       Child
	percent uint64
	count   atomic.Uint64
}

// MirrorChild is one mirror of a Mirroring service.
type MirrorChild struct {
	Child   Child
	Percent int
}

// NewMirroring returns the mirroring service name. maxBody and
// maxInFlight must be positive.
func NewMirroring(name string, main Child, mirrors []MirrorChild, maxBody int64, maxInFlight int, logger *slog.Logger) *Mirroring {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Mirroring{name: name, main: main, maxBody: maxBody, slots: make(chan struct{}, max(maxInFlight, 1)),
		log: logger.With("component", "proxy", "service", name)}
	for _, mc := range mirrors {
		m.mirrors = append(m.mirrors, &mirror{c: mc.Child, percent: uint64(min(max(mc.Percent, 0), 100))})
	}
	return m
}

// chosen reports whether this request is one of the mirror's share.
func (mr *mirror) chosen() bool {
	n := mr.count.Add(1)
	return n*mr.percent/100 != (n-1)*mr.percent/100
}

// ServeWithStats serves r from the main service and copies it to the
// mirrors whose turn it is.
func (m *Mirroring) ServeWithStats(w http.ResponseWriter, r *http.Request, st *Stats) {
	var chosen []*mirror
	if r.Header["Upgrade"] == nil {
		for _, mr := range m.mirrors {
			if mr.chosen() {
				chosen = append(chosen, mr)
			}
		}
	}
	if len(chosen) == 0 {
		m.main.ServeWithStats(w, r, st)
		return
	}
	body, ok := m.bufferBody(r)
	if ok {
		for _, mr := range chosen {
			m.send(mr, r, body)
		}
	}
	m.main.ServeWithStats(w, r, st)
}

// bufferBody reads r's body (up to maxBody) so that it can be sent twice,
// and gives r a body that replays it. ok is false when the body is too
// large to mirror; r then still gets all of it.
func (m *Mirroring) bufferBody(r *http.Request) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	if r.ContentLength > m.maxBody {
		return nil, false
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, m.maxBody+1))
	rest := r.Body
	if err != nil || int64(len(buf)) > m.maxBody {
		// Too large (or broken): the main service gets what was read
		// and the rest, as one body.
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), rest), rest}
		return nil, false
	}
	_ = rest.Close()
	r.Body = io.NopCloser(bytes.NewReader(buf))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return buf, true
}

// send copies r (with body) to mr on a goroutine, if a slot is free.
func (m *Mirroring) send(mr *mirror, r *http.Request, body []byte) {
	select {
	case m.slots <- struct{}{}:
	default:
		if m.dropped.Add(1)%1000 == 1 {
			m.log.Warn("mirror copies dropped: too many under way", "max_in_flight", cap(m.slots), "dropped", m.dropped.Load())
		}
		return
	}
	// A context of its own: the copy outlives the client's request,
	// and must not carry its server's values (a broken copy must not
	// abort the client's connection).
	ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
	cp := r.Clone(ctx)
	cp.Body, cp.GetBody = http.NoBody, nil
	if body != nil {
		cp.Body = io.NopCloser(bytes.NewReader(body))
		cp.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	m.inFlight.Add(1)
	go func() {
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				m.log.Error("mirror copy panicked", "panic", v, "stack", string(debug.Stack()))
			}
			cancel()
			m.inFlight.Add(-1)
			<-m.slots
		}()
		mr.c.ServeWithStats(&discard{h: http.Header{}}, cp, nil)
	}()
}

// ServeHTTP is ServeWithStats reporting to a Stats in r's context.
func (m *Mirroring) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.ServeWithStats(w, r, statsFrom(r.Context()))
}

// Available reports whether the main service can take a request.
func (m *Mirroring) Available() bool { return available(m.main) }

// InFlight is the number of mirror copies under way.
func (m *Mirroring) InFlight() int64 { return m.inFlight.Load() }

// Close does nothing: copies under way end by themselves (30 s at most),
// and the children are closed by their owner.
func (m *Mirroring) Close() error { return nil }

// discard is the ResponseWriter of a mirror copy.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Flush()                      {}
