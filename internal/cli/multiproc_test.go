//go:build !race

package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
)

// TestNoRaceConcurrentRenewOrdersOnce runs two, then four `zoku renew
// --force` processes at the same moment on one storage folder: every
// certificate is ordered exactly once per round (the others find, under
// the name's lock, a certificate stored after they started, and keep it).
func TestNoRaceConcurrentRenewOrdersOnce(t *testing.T) {
	path := t.TempDir()
	b, err := storage.OpenFiles(path, storage.FilesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	port, g := gatedAnswerer(t, b)
	g.Open()
	ca := testCA(t, embedca.Options{HTTPPort: port})
	const n = 6
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("multi%d.example.test", i))
	}
	base := []string{"--server", ca.DirectoryURL(), "--accept-tos", "--email", "m@example.test", "--path", path, "--http", "--http.port", "127.0.0.1:0"}
	for _, name := range names {
		mustZoku(t, append(append([]string{"obtain"}, base...), "-d", name)...)
	}
	for _, procs := range []int{2, 4} {
		t.Run(fmt.Sprintf("%d processes", procs), func(t *testing.T) {
			before := len(ca.Orders())
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			// The processes start "at the same moment": no validation is
			// answered (so nothing is renewed) until every one of them is
			// up and listening, as overlapping cron runs would be.
			g.Close()
			var wg sync.WaitGroup
			outs := make([]syncBuffer, procs)
			errs := make([]error, procs)
			for p := range procs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cmd := zokuProcess(ctx, append(append([]string{"renew"}, base...), "--force")...)
					cmd.Stdout, cmd.Stderr = &outs[p], &outs[p]
					errs[p] = cmd.Run()
				}()
			}
			for p := range procs {
				outs[p].waitFor(t, "http-01 server listening", time.Minute)
			}
			g.Open()
			wg.Wait()
			for p, err := range errs {
				if err != nil {
					t.Fatalf("process %d: %v\n%s", p, err, outs[p].String())
				}
			}
			perName := map[string]int{}
			for _, o := range ca.Orders()[before:] {
				if o.Status == http.StatusCreated {
					// (Pebble sometimes refuses a renewal's "replaces" with
					// an internal error, and the client orders once more
					// without it: one order, two requests.)
					perName[strings.Join(o.Identifiers, ",")]++
				}
			}
			for _, name := range names {
				if perName[name] != 1 {
					t.Errorf("%s ordered %d times by %d processes, want once", name, perName[name], procs)
				}
			}
			if len(perName) != n {
				t.Errorf("orders for %d names, want %d: %v", len(perName), n, perName)
			}
			kept := 0
			for p := range procs {
				kept += strings.Count(outs[p].String(), "renewed by another process meanwhile")
			}
			if want := n * (procs - 1); kept != want {
				t.Errorf("%d certificates kept from another process, want %d", kept, want)
			}
		})
	}
}
