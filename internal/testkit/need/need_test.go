package need

import (
	"testing"
)

func TestFindShell(t *testing.T) {
	if _, err := Find("sh"); err != nil {
		t.Fatalf("Find(sh): %v", err)
	}
	if _, err := Find("no-such-program-zoku"); err == nil {
		t.Fatal("Find(no-such-program-zoku): got no error")
	}
}

func TestInCI(t *testing.T) {
	for _, tc := range []struct {
		val  string
		want bool
	}{{"true", true}, {"1", true}, {"false", false}, {"", false}, {"yes", false}} {
		t.Setenv("CI", tc.val)
		if got := InCI(); got != tc.want {
			t.Errorf("CI=%q: InCI() = %v, want %v", tc.val, got, tc.want)
		}
	}
}

// fakeTB records how a test ended without ending the real one.
type fakeTB struct {
	testing.TB
	failed, skipped bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }
func (f *fakeTB) Skipf(string, ...any)  { f.skipped = true }

func TestMissingFailsUnderCI(t *testing.T) {
	for _, tc := range []struct {
		ci            string
		fail, skipped bool
	}{{"true", true, false}, {"", false, true}} {
		t.Setenv("CI", tc.ci)
		f := &fakeTB{}
		Missing(f, "frobnicator", "apt-get install -y frobnicator")
		if f.failed != tc.fail || f.skipped != tc.skipped {
			t.Errorf("CI=%q: failed=%v skipped=%v, want failed=%v skipped=%v", tc.ci, f.failed, f.skipped, tc.fail, tc.skipped)
		}
	}
}
