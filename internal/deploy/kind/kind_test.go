package kind_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/deploy"
	"github.com/zoku/zoku/internal/deploy/internal/certfile"
	"github.com/zoku/zoku/internal/deploy/kind"
	"github.com/zoku/zoku/internal/embedca"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/testkit/deploytest"
	"github.com/zoku/zoku/internal/testkit/testenv"
)

// toy is a target type that exists only in this test: registering it is
// all it takes for configs to accept type: toy with a toy: section (keys,
// defaults, checks with lines) and for the runner to deploy to it. No
// other package knows it.
type toy struct {
	Greeting string        `yaml:"greeting" toml:"greeting" json:"greeting"`
	Token    config.Secret `yaml:"token" toml:"token" json:"token,omitempty"`
	Copies   int           `yaml:"copies" toml:"copies" json:"copies,omitempty"`
}

// toyShelf is where toy targets put what they are given, by target name.
var toyShelf = struct {
	sync.Mutex
	got map[string][]string // "<greeting> <serial>" per deploy
}{got: map[string][]string{}}

type toyTarget struct {
	name, greeting string
}

func (t *toyTarget) Deploy(_ context.Context, b *storage.Bundle) error {
	p, err := certfile.Split(b)
	if err != nil {
		return err
	}
	toyShelf.Lock()
	defer toyShelf.Unlock()
	toyShelf.got[t.name] = append(toyShelf.got[t.name], t.greeting+" "+p.Leaf.SerialNumber.Text(16))
	return nil
}

// Serving makes the toy an Inspector: it says what it holds.
func (t *toyTarget) Serving(context.Context, string) (*big.Int, error) {
	toyShelf.Lock()
	defer toyShelf.Unlock()
	got := toyShelf.got[t.name]
	if len(got) == 0 {
		return nil, nil
	}
	_, hex, _ := strings.Cut(got[len(got)-1], " ")
	n, _ := new(big.Int).SetString(hex, 16)
	return n, nil
}

var _ deploy.Inspector = (*toyTarget)(nil)

func init() {
	kind.Register(kind.Kind[toy]{
		Name: "toy",
		Defaults: func(_ *config.Target, s *toy) {
			if s.Greeting == "" {
				s.Greeting = "hello"
			}
			if s.Copies == 0 {
				s.Copies = 1
			}
		},
		Validate: func(k *config.TargetCheck, t *config.Target, s *toy) error {
			if s.Copies < 1 || s.Copies > 3 {
				return k.Errorf(k.Section+".copies", "%s.copies %d is out of range; use 1 to 3", k.Section, s.Copies)
			}
			if len(t.Certificates) > 1 {
				return k.Errorf(k.Path+".certificates", "%s: a toy holds one certificate", k.Path)
			}
			return nil
		},
		New: func(env kind.Env, s *toy) (kind.Target, error) {
			return &toyTarget{name: env.Name, greeting: s.Greeting}, nil
		},
	})
}

// The toy kind is a target type like the shipped ones: a run orders its
// certificate from the CA and hands it over, and a second run finds it in
// place (through the toy's Serving).
func TestRegisteredKindDeploys(t *testing.T) {
	p := testenv.FreePort(t)
	listen := fmt.Sprintf("127.0.0.1:%d", p)
	ca := testenv.StartCA(t, embedca.Options{HTTPPort: p})
	store, err := storage.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	y := fmt.Sprintf(`certificates:
  acme: {server: %q, acceptTOS: true}
targets:
  box:
    type: Toy
    certificates: [{main: toy.example.test}]
    challenge: {listen: %q, selfCheckAddress: %q}
    toy:
      greeting: hi
      token: ${TOY_TOKEN}
`, ca.DirectoryURL(), listen, listen)
	cfg, err := config.Parse("zoku.yaml", []byte(y), func(k string) string { return map[string]string{"TOY_TOKEN": "s3cret"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	s, ok := cfg.Targets["box"].Settings.(*toy)
	if !ok || s.Greeting != "hi" || s.Copies != 1 || s.Token != "s3cret" {
		t.Fatalf("toy section: %#v, want greeting hi, copies 1 (default), the token from the environment", cfg.Targets["box"].Settings)
	}
	logs := &deploytest.Buffer{}
	run := deploytest.Runner(t, cfg, ca, store, logs)
	res := deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.Obtained)
	toyShelf.Lock()
	got := append([]string(nil), toyShelf.got["box"]...)
	toyShelf.Unlock()
	if want := "hi " + strings.ToLower(res.Serial); len(got) != 1 || got[0] != want {
		t.Fatalf("the toy got %q, want [%q]\n%s", got, want, logs)
	}
	deploytest.MustRun(t, run, deploy.RunOptions{}, deploy.UpToDate)
	if st := run.Status(); len(st) != 1 || st[0].Type != "toy" {
		t.Errorf("status: %+v, want one target of type toy", st)
	}
}

// The toy's section is checked like any table of the file: unknown keys
// with a suggestion, its own checks at the line of the key, its name
// suggested for a misspelt type or section, and only under its type.
func TestRegisteredKindConfigErrors(t *testing.T) {
	head := "certificates:\n  acme: {server: letsencrypt}\ntargets:\n  box:\n"
	cases := []struct {
		name, body, want string
		line             int
	}{
		{"unknown key", "    type: toy\n    certificates: [{main: a.example.net}]\n    challenge: {listen: \":8888\"}\n    toy:\n      greting: hi\n",
			`unknown key "greting" in targets.box.toy (did you mean "greeting"?)`, 9},
		{"its own check", "    type: toy\n    certificates: [{main: a.example.net}]\n    challenge: {listen: \":8888\"}\n    toy:\n      copies: 7\n",
			"targets.box.toy.copies 7 is out of range; use 1 to 3", 9},
		{"its limit on certificates", "    type: toy\n    certificates: [{main: a.example.net}, {main: b.example.net}]\n    challenge: {listen: \":8888\"}\n",
			"targets.box: a toy holds one certificate", 6},
		{"misspelt type", "    type: toi\n    certificates: [{main: a.example.net}]\n    challenge: {listen: \":8888\"}\n",
			`targets.box.type "toi" is unknown; use one of `, 5},
		{"misspelt section", "    type: toy\n    certificates: [{main: a.example.net}]\n    challenge: {listen: \":8888\"}\n    tyo: {greeting: hi}\n",
			`unknown key "tyo" in targets.box (did you mean "toy"?)`, 8},
		{"section of another type", "    type: exec\n    certificates: [{main: a.example.net}]\n    challenge: {listen: \":8888\"}\n    exec: {command: x}\n    toy: {greeting: hi}\n",
			"targets.box.toy is set but the type is exec", 9},
		{"no responder", "    type: toy\n    certificates: [{main: a.example.net}]\n    challenge: {responder: true}\n",
			"targets.box.challenge.responder is for netscaler targets", 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("zoku.yaml", []byte(head+tc.body), nil)
			e, ok := err.(*config.Error)
			if !ok {
				t.Fatalf("got %v, want a *config.Error saying %q", err, tc.want)
			}
			if !strings.Contains(e.Reason, tc.want) || e.Line != tc.line {
				t.Errorf("got line %d: %q; want line %d: %q", e.Line, e.Reason, tc.line, tc.want)
			}
		})
	}
	_, err := config.Parse("zoku.yaml", []byte(head+"    type: toi\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `(did you mean "toy"?)`) || !strings.Contains(err.Error(), "toy") {
		t.Errorf("misspelt type: %v; want the toy suggested", err)
	}
}

// A config with a toy target renders the section under its type (YAML
// for people, JSON for the admin API), secrets redacted, and reads back
// the same; the TOML twin of the file loads equal.
func TestRegisteredKindRendersAndRoundTrips(t *testing.T) {
	y := "certificates:\n  acme: {server: letsencrypt}\ntargets:\n  box:\n    type: toy\n    certificates: [{main: a.example.net}]\n    challenge: {listen: \"127.0.0.1:8888\"}\n    toy: {greeting: hi, token: s3cret}\n"
	c, err := config.Parse("zoku.yaml", []byte(y), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "    toy:\n      greeting: hi\n") {
		t.Errorf("YAML has no toy section:\n%s", out)
	}
	back, err := config.Parse("out.yaml", out, nil)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, out)
	}
	if got := back.Targets["box"].Settings.(*toy); *got != *c.Targets["box"].Settings.(*toy) {
		t.Errorf("round trip: %+v, want %+v", got, c.Targets["box"].Settings)
	}
	red := c.Redacted()
	if got := string(red.Targets["box"].Settings.(*toy).Token); got != "REDACTED" {
		t.Errorf("redacted token: %q", got)
	}
	if got := string(c.Targets["box"].Settings.(*toy).Token); got != "s3cret" {
		t.Errorf("Redacted changed the original: %q", got)
	}
	js, err := json.Marshal(red)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"toy":{"greeting":"hi","token":"REDACTED","copies":1}`) || strings.Contains(string(js), "s3cret") {
		t.Errorf("JSON: %s", js)
	}
	tm := "[certificates.acme]\nserver = \"letsencrypt\"\n[targets.box]\ntype = \"toy\"\ncertificates = [{main = \"a.example.net\"}]\nchallenge = {listen = \"127.0.0.1:8888\"}\ntoy = {greeting = \"hi\", token = \"s3cret\"}\n"
	ct, err := config.Parse("zoku.toml", []byte(tm), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := ct.Targets["box"].Settings.(*toy); *got != *c.Targets["box"].Settings.(*toy) {
		t.Errorf("TOML: %+v, want %+v", got, c.Targets["box"].Settings)
	}
}

// Register refuses what would break the file's schema.
func TestRegisterRefuses(t *testing.T) {
	cases := []struct {
		name string
		k    kind.Kind[toy]
		want string
	}{
		{"taken", kind.Kind[toy]{Name: "toy", New: newToy}, "registered twice"},
		{"a common key", kind.Kind[toy]{Name: "verify", New: newToy}, "a key every target has"},
		{"not a key", kind.Kind[toy]{Name: "Big Box", New: newToy}, "lower-case letters and digits"},
		{"no constructor", kind.Kind[toy]{Name: "box2"}, "has no New"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tc.want) {
					t.Errorf("panic %v, want one saying %q", r, tc.want)
				}
			}()
			kind.Register(tc.k)
		})
	}
	if _, ok := kind.Lookup("verify"); ok {
		t.Error("a refused kind was kept")
	}
}

func newToy(kind.Env, *toy) (kind.Target, error) { return &toyTarget{}, nil }
