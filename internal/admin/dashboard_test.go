package admin

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/testkit/need"
)

// chromiumBin is where Debian's chromium package puts the browser.
const chromiumBin = "/usr/bin/chromium"

// chromium runs headless Chromium once (90 s at most) with args after the
// common flags and returns its stdout.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := os.Stat(chromiumBin); err != nil {
		need.Missing(t, "headless Chromium ("+chromiumBin+")", "apt-get install -y chromium")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000",
	}
	cmd := exec.CommandContext(ctx, chromiumBin, append(base, args...)...)
	// Chromium starts helper processes: run it in its own process group
	// and end the whole group (by its id) if the time runs out.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\nstderr:\n%s", strings.Join(args, " "), err, tail(errb.String(), 2000))
	}
	return out.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// artifactDir is $ZOKU_TEST_ARTIFACTS/<test> when set, else the test's
// artifact folder (kept with go test -artifacts).
func artifactDir(t *testing.T) string {
	if d := os.Getenv("ZOKU_TEST_ARTIFACTS"); d != "" {
		dir := filepath.Join(d, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.ArtifactDir()
}

// expiryText is how the dashboard writes a time (app.js fmtTime).
func expiryText(tm time.Time) string { return tm.UTC().Format("2006-01-02 15:04") + " UTC" }

// TestDashboardInChromium opens the dashboard in headless Chromium against
// an admin serving real certificates from Pebble, one of them with a
// failing renewal, and checks what the page rendered; then it checks that
// the same certificates seen 100 days later turn the page red, never
// green (traefik#12126).
func TestDashboardInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumBin); err != nil {
		need.Missing(t, "headless Chromium ("+chromiumBin+")", "apt-get install -y chromium")
	}
	const okName, badName = "dash.example.test", "failing.example.test"
	r := newRig(t, rigOptions{}, okName, badName)
	if resp, body := call(t, r.url, "POST", "/api/v1/targets/lb1/deploy", testToken, ""); resp.StatusCode != 200 {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	r.ca.SetDown(true)
	if err := r.mgr.RenewNow(badName); err != nil {
		t.Fatal(err)
	}
	for e := r.next(t); e.Kind != certmgr.EventFailed; e = r.next(t) {
	}
	page := r.url + "/#token=" + testToken

	t.Run("rows and expiry", func(t *testing.T) {
		dom := chromium(t, "--dump-dom", page)
		if err := os.WriteFile(filepath.Join(artifactDir(t), "dashboard.html"), []byte(dom), 0o644); err != nil {
			t.Fatal(err)
		}
		want := []string{
			`<tr class="valid" data-cert="` + okName + `">`,
			`<tr class="failing" data-cert="` + badName + `">`,
			`<div class="expiry">` + expiryText(r.leaf(t, okName).NotAfter) + `</div>`,
			`<div class="expiry">` + expiryText(r.leaf(t, badName).NotAfter) + `</div>`,
			"expires in ",
			`class="banner warn"`, "1 renewal failing",
			`class="timeline"`, `class="ari"`, `class="next"`,
			"serverInternal",              // the last error, shown on the row
			"r0", "1/1 up", "lb1", ">ok<", // routes, services, targets
			"<td>db.example.test</td><td>passthrough</td>", " (0 open)", // TCP routes and services
		}
		for _, w := range want {
			if !strings.Contains(dom, w) {
				t.Errorf("the rendered page lacks %q", w)
			}
		}
		if strings.Contains(dom, testToken) {
			t.Error("the token is in the rendered page")
		}
		if t.Failed() {
			t.Logf("rendered DOM:\n%s", tail(dom, 6000))
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		shot := filepath.Join(artifactDir(t), "dashboard.png")
		chromium(t, "--screenshot="+shot, "--window-size=1280,900", page)
		fi, err := os.Stat(shot)
		if err != nil || fi.Size() < 1000 {
			t.Fatalf("screenshot %s: %v (size %d)", shot, err, fi.Size())
		}
		t.Logf("dashboard screenshot: %s", shot)
	})

	t.Run("expired is red", func(t *testing.T) {
		later := New(Options{Address: "127.0.0.1:0", Token: testToken,
			Now: func() time.Time { return time.Now().Add(100 * 24 * time.Hour) }})
		if err := later.Start(context.Background(), Sources{Certs: r.mgr, Routes: r.rt, Targets: r.targets}); err != nil {
			t.Fatal(err)
		}
		defer later.Close()
		dom := chromium(t, "--dump-dom", later.URL()+"/#token="+testToken)
		for _, w := range []string{`class="banner bad"`, "2 expired", `<tr class="expired" data-cert="` + okName + `">`, "expired "} {
			if !strings.Contains(dom, w) {
				t.Errorf("the rendered page lacks %q", w)
			}
		}
		if strings.Contains(dom, `class="banner ok"`) {
			t.Error("the banner is green while every certificate has expired")
		}
		shot := filepath.Join(artifactDir(t), "dashboard-expired.png")
		chromium(t, "--screenshot="+shot, "--window-size=1280,900", later.URL()+"/#token="+testToken)
		t.Logf("expired dashboard screenshot: %s", shot)
	})
}

// TestFleetDashboardInChromium opens the dashboard of one of two nodes on
// one storage, where the other node missed a renewal and holds a lock,
// and checks the fleet section: both nodes, the certificate × node grid
// with the node behind storage highlighted, the lock holder, the targets
// per node, and a banner that is not green; then the same page five
// minutes later, when the other node has stopped heartbeating, shows it
// stale.
func TestFleetDashboardInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumBin); err != nil {
		need.Missing(t, "headless Chromium ("+chromiumBin+")", "apt-get install -y chromium")
	}
	const n1, n2 = "one.grid.example.test", "two.grid.example.test"
	a, b := twoNodes(t, &offsetClock{}, n1, n2)
	if resp, body := call(t, a.url, "POST", "/api/v1/targets/lb1/deploy", testToken, ""); resp.StatusCode != 200 {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	old := a.leaf(t, n1).SerialNumber.Text(16)
	b.stopManager() // node-b misses what node-a stores from now on
	nextSecond()
	if err := a.mgr.RenewNow(n1); err != nil {
		t.Fatal(err)
	}
	for e := a.next(t); e.Kind != certmgr.EventRenewed; e = a.next(t) {
	}
	publish(t, a, b)
	lease, err := b.store.Backend().TryLock(context.Background(), "certificates/"+storage.SanitizedName(n2))
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Unlock(context.Background())

	t.Run("grid", func(t *testing.T) {
		dom := chromium(t, "--dump-dom", a.url+"/#token="+testToken)
		if err := os.WriteFile(filepath.Join(artifactDir(t), "fleet.html"), []byte(dom), 0o644); err != nil {
			t.Fatal(err)
		}
		want := []string{
			`<section id="fleet">`,
			`<tr class="node live" data-node="node-a">`, `<tr class="node live" data-node="node-b">`, "(this node)",
			`<tr class="disagree" data-fleet-cert="` + n1 + `">`,
			`<td class="cell current node-live" data-node="node-a"`,
			`<td class="cell behind node-live" data-node="node-b"`,
			shortSerial(old), "stored ", " by node-a",
			`<span class="lock">node-b</span>`, "lock: ordering",
			`data-fleet-target="lb1"`, "behind storage", "never deployed",
			`class="banner warn"`, "1 node behind storage", "1 target behind storage",
		}
		for _, w := range want {
			if !strings.Contains(dom, w) {
				t.Errorf("the rendered page lacks %q", w)
			}
		}
		if strings.Contains(dom, testToken) {
			t.Error("the token is in the rendered page")
		}
		if t.Failed() {
			t.Logf("rendered DOM:\n%s", tail(dom, 8000))
		}
		shot := filepath.Join(artifactDir(t), "fleet.png")
		chromium(t, "--screenshot="+shot, "--window-size=1280,1000", a.url+"/#token="+testToken)
		t.Logf("fleet screenshot: %s", shot)
	})

	t.Run("stale node", func(t *testing.T) {
		later := New(Options{Address: "127.0.0.1:0", Token: testToken,
			Now: func() time.Time { return time.Now().Add(5 * time.Minute) }})
		if err := later.Start(context.Background(), Sources{Certs: a.mgr, Routes: a.rt, Targets: a.targets, Fleet: a.fleet}); err != nil {
			t.Fatal(err)
		}
		defer later.Close()
		dom := chromium(t, "--dump-dom", later.URL()+"/#token="+testToken)
		for _, w := range []string{`<tr class="node stale" data-node="node-b">`, `class="state stale"`, "1 node stale",
			`<td class="cell behind node-stale" data-node="node-b"`} {
			if !strings.Contains(dom, w) {
				t.Errorf("the rendered page lacks %q", w)
			}
		}
		if strings.Contains(dom, `class="banner ok"`) {
			t.Error("the banner is green while a node is stale")
		}
	})
}

// shortSerial is how the fleet grid writes a serial (app.js shortSerial).
func shortSerial(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}
