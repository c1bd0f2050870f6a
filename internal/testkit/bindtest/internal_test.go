package bindtest

import (
	"strings"
	"testing"

	"github.com/zoku/zoku/internal/testkit/need"
)

// named keeps running when its port is taken; the marker makes start see
// that the answers come from someone else.
func TestStartDetectsAnotherServerOnThePort(t *testing.T) {
	first := Start(t)
	named := need.Binary(t, "named", "install BIND9 (apt-get install -y bind9)")
	s, err := start(named, t.TempDir(), DefaultZones(), first.Addr())
	if err == nil {
		_ = s.stop()
		t.Fatal("start on a taken port: got a server, want an error")
	}
	if !strings.Contains(err.Error(), "another server answers") && !strings.Contains(err.Error(), "exited before it was ready") {
		t.Errorf("start on a taken port: got %v, want the marker or early-exit error", err)
	}
}
