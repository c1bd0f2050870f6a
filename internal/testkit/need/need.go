// Package need lets a test ask for a program from a Debian package. A
// developer without the program gets a skip that says what to install; under
// CI=true the test fails instead, so a green CI run always covered every real
// server (.ci/run installs them all).
package need

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// InCI reports whether the tests run under CI (the CI variable is a true
// value, as CI systems set it).
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// Missing ends the test because something it needs is not there: a skip
// that names what to install, or under CI a failure.
func Missing(t testing.TB, what, install string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is missing and CI=true: the CI run must cover it; %s", what, install)
		return
	}
	t.Skipf("%s is missing; %s to run this test", what, install)
}

// Binary returns the path of the program name, looked up in PATH and then in
// the sbin folders Debian packages use. When it is not found, the test is
// skipped with install as the hint (e.g. "apt-get install -y haproxy"), or
// fails under CI.
func Binary(t testing.TB, name, install string) string {
	t.Helper()
	if p, err := Find(name); err == nil {
		return p
	}
	Missing(t, name, install)
	return ""
}

// Find looks name up in PATH and then in /usr/sbin and /sbin, where Debian
// puts daemons that a non-root PATH may lack.
func Find(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if q, serr := exec.LookPath(dir + "/" + name); serr == nil {
			return q, nil
		}
	}
	return "", err
}
