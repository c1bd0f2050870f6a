package legocli_test

import (
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// --http.webroot: the answers are written into a folder that another web
// server serves; nothing of zoku's listens. Both lego's line and zoku's
// own obtain take it.
func TestWebroot(t *testing.T) {
	ca, addr := httpCA(t)
	root := t.TempDir()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(root)), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	dir := t.TempDir()
	mustLego(t, "run", "--server", ca.DirectoryURL(), "-a", "-m", "web@example.test", "--path", dir,
		"--http", "--http.webroot", root, "-d", "web.example.test", "--user-agent", "cron-job/1")
	leafOf(t, filepath.Join(dir, "certificates", "web.example.test.crt"))

	z := zokuRun(t, "obtain", "--server", ca.DirectoryURL(), "-a", "-m", "web@example.test", "--path", dir,
		"--http", "--http.webroot", root, "-d", "web2.example.test", "--http-timeout", "20")
	if z.code != 0 {
		t.Fatalf("zoku obtain --http.webroot: exit %d\n%s", z.code, z.stderr)
	}
	leafOf(t, filepath.Join(dir, "certificates", "web2.example.test.crt"))
	if z := zokuRun(t, "obtain", "--http.webroot", root, "-d", "x.example.test", "--path", dir); z.code != 2 {
		t.Errorf("--http.webroot without --http: exit %d %q", z.code, z.stderr)
	}
}
