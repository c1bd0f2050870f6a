package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/admin"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// startAdminNode is startNode with the admin listener on 127.0.0.1:port
// and token.
func startAdminNode(t *testing.T, name, server, storagePath string, hosts []string, port int, token string) *node {
	t.Helper()
	n := &node{name: name, web: testenv.FreePort(t), tlsPort: testenv.FreePort(t), server: server, storage: storagePath,
		serving: map[string]bool{}, changed: make(chan struct{}), changedLines: make(chan struct{}), done: make(chan struct{})}
	cfg := strings.Replace(nodeConfig(n.web, n.tlsPort, server, storagePath, hosts), "admin: {disabled: true}",
		fmt.Sprintf("admin: {address: \"127.0.0.1:%d\", token: %q}", port, token), 1)
	n.cfgPath = filepath.Join(t.TempDir(), name+".yaml")
	must(t, os.WriteFile(n.cfgPath, []byte(cfg), 0o600))
	n.cmd = zokuProcess(context.Background(), "run", "--config", n.cfgPath)
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.cmd.Stdout = io.Discard
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go n.read(stderr)
	t.Cleanup(n.kill)
	return n
}

// fleetUntil reads GET /api/v1/fleet every 200 ms until ok accepts it
// (one minute at most) and returns the last view.
func fleetUntil(t *testing.T, url, token string, ok func(admin.FleetView) bool) admin.FleetView {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	var v admin.FleetView
	for range 300 {
		req, err := http.NewRequest("GET", url+"/api/v1/fleet", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := client.Do(req); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			v = admin.FleetView{}
			if resp.StatusCode == 200 && json.Unmarshal(body, &v) == nil && ok(v) {
				return v
			}
		}
		time.Sleep(200 * time.Millisecond) // nodes publish within a second of an event
	}
	t.Fatalf("the fleet view never got there; last: %+v", v)
	return v
}

// TestFleetOfRunProcesses runs two `zoku run` processes on one folder,
// the first with its admin listener: its fleet view shows both processes,
// named <hostname>:<pid>, serving the stored certificate of every host;
// after the second shuts down (SIGTERM) it shows as stopped.
func TestFleetOfRunProcesses(t *testing.T) {
	path := t.TempDir()
	ca := testCA(t, embedca.Options{HTTPPort: sharedAnswerer(t, path)})
	hosts := []string{"fleet0.example.test", "fleet1.example.test"}
	const token = "fleet-test-token-0123456789"
	port := testenv.FreePort(t)
	n1 := startAdminNode(t, "node1", ca.DirectoryURL(), path, hosts, port, token)
	n2 := startNode(t, "node2", ca.DirectoryURL(), path, hosts)
	n1.waitServing(t, hosts, 2*time.Minute)
	n2.waitServing(t, hosts, 2*time.Minute)
	host, _ := os.Hostname()
	id1, id2 := fmt.Sprintf("%s:%d", host, n1.cmd.Process.Pid), fmt.Sprintf("%s:%d", host, n2.cmd.Process.Pid)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)

	v := fleetUntil(t, url, token, func(v admin.FleetView) bool {
		if len(v.Nodes) != 2 || v.Summary.Live != 2 || len(v.Certificates) != len(hosts) {
			return false
		}
		for _, c := range v.Certificates {
			if !c.Agree || len(c.Nodes) != 2 {
				return false
			}
		}
		return true
	})
	if v.Self != id1 || v.Nodes[0].ID == v.Nodes[1].ID || (v.Nodes[0].ID != id2 && v.Nodes[1].ID != id2) {
		t.Errorf("self %q, nodes %q and %q; want %s (self) and %s", v.Self, v.Nodes[0].ID, v.Nodes[1].ID, id1, id2)
	}
	st, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range v.Certificates {
		b, err := st.LoadCertificate(context.Background(), c.Name)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := b.Leaf()
		if c.Stored == nil || c.Stored.Serial != leaf.SerialNumber.Text(16) || (c.Stored.StoredBy != id1 && c.Stored.StoredBy != id2) {
			t.Errorf("%s stored = %+v, want serial %s stored by one of the nodes", c.Name, c.Stored, leaf.SerialNumber.Text(16))
		}
	}

	// A clean stop marks the node stopped before the storage closes.
	must(t, syscall.Kill(n2.cmd.Process.Pid, syscall.SIGTERM))
	<-n2.done
	_ = n2.cmd.Wait()
	fleetUntil(t, url, token, func(v admin.FleetView) bool {
		return len(v.Nodes) == 2 && v.Summary.Stopped == 1 && v.Summary.Live == 1
	})
}
