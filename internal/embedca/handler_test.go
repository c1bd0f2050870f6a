package embedca_test

// Tests of CA.handler: the gate around authorization requests and the
// limit on request bodies.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme/api"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// TestAuthzPollsBesideNewOrders polls authorizations while other clients
// place new orders, the pattern in which Pebble's own locks wait for each
// other for ever (see CA.handler): an authorization poll holds the
// authorization while it reads the store, a new order holds the store
// while it reads every authorization, and each order's writes to the
// store wait between them. The CA must answer every request. Bounded: 4
// pollers and 4 orderers, 400 new orders in all, within 3 minutes (a
// hang, not a speed).
func TestAuthzPollsBesideNewOrders(t *testing.T) {
	ca := testenv.StartCA(t, embedca.Options{AlwaysValid: true})
	const pollers, orderers, orders = 4, 4, 400
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	// Every client before any request: lego's NewClient sets fields of
	// the HTTP client they share.
	var cores []*api.Core
	for range pollers + orderers {
		client, u := newClient(t, ca)
		register(t, client, u)
		core, err := api.New(ca.HTTPClient(), "zoku-test", ca.DirectoryURL(), u.GetRegistration().Location, u.GetPrivateKey())
		if err != nil {
			t.Fatal(err)
		}
		cores = append(cores, core)
	}
	// Each poller polls the authorizations of its own orders.
	var authzs [pollers][]string
	for p := range pollers {
		for i := range 5 {
			o, err := cores[p].Orders.New(ctx, []string{fmt.Sprintf("poll%d-%d.embedca.test", p, i)}, nil)
			if err != nil {
				t.Fatalf("new order: %v", err)
			}
			authzs[p] = append(authzs[p], o.Authorizations...)
		}
	}
	var (
		wg      sync.WaitGroup
		placed  atomic.Int64
		failure = make(chan error, pollers+orderers)
	)
	for o := range orderers {
		wg.Go(func() {
			for {
				n := placed.Add(1)
				if n > orders {
					return
				}
				if _, err := cores[pollers+o].Orders.New(ctx, []string{fmt.Sprintf("order%d.embedca.test", n)}, nil); err != nil {
					failure <- fmt.Errorf("new order %d: %w", n, err)
					return
				}
			}
		})
	}
	for p := range pollers {
		wg.Go(func() {
			for i := 0; placed.Load() <= orders; i++ {
				if _, err := cores[p].Authorizations.Get(ctx, authzs[p][i%len(authzs[p])]); err != nil {
					failure <- fmt.Errorf("authorization poll: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(failure)
	for err := range failure {
		t.Errorf("the CA stopped answering: %v", err)
	}
}

// TestOversizedRequestRefused: a POST body over 1 MiB is refused with an
// ACME problem before Pebble or the gate sees it (Pebble reads bodies
// whole), after little more than 1 MiB was read, and the CA keeps
// answering. Streamed without end, under a memory limit.
func TestOversizedRequestRefused(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(256 << 20))
	ca := testenv.StartCA(t, embedca.Options{})
	sent := &zeros{}
	endless := io.MultiReader(strings.NewReader(`{"protected":"`), sent)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, strings.TrimSuffix(ca.DirectoryURL(), "/dir")+"/authZ/x", endless)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/jose+json")
	resp, err := ca.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("POST an endless body: %v", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "urn:ietf:params:acme:error:malformed") {
		t.Fatalf("endless body: %d %s, want 400 and an ACME malformed problem", resp.StatusCode, body)
	}
	// What the socket buffers hold besides the 1 MiB read: a few MiB.
	if n := sent.n.Load(); n > 16<<20 {
		t.Errorf("the client sent %d MiB before the refusal, want the CA to stop after 1 MiB", n>>20)
	}
	resp, err = ca.HTTPClient().Get(ca.DirectoryURL())
	if err != nil {
		t.Fatalf("directory after the refusal: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("directory after the refusal: %d", resp.StatusCode)
	}
}

// zeros is an endless stream of '0' that counts what was read of it.
type zeros struct{ n atomic.Int64 }

func (z *zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	z.n.Add(int64(len(p)))
	return len(p), nil
}
