package legocli

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The parity test reads lego v5's command line from lego's own source
// (the module zoku builds with; no network): the command tree of package
// cmd and the flags of cmd/internal/flags, with their aliases, LEGO_*
// variables and literal defaults. It fails on any of them that zoku's
// lego personality does not accept, unless knowinglyUnsupported below
// names it with the reason; and on any entry of that list lego no longer
// has, so the list cannot go stale.

// knowinglyUnsupported are lego's names zoku's lego personality accepts
// but refuses to act on (flags, as "--name"), or does not read at all
// (variables), with the reason. Flags here must be in `unavailable`, so
// using one says why.
var knowinglyUnsupported = map[string]string{
	"--config":                    "lego's configuration-file mode (.lego.yml) is not translated; the command line is",
	"--http.memcached-host":       "zoku has no memcached writer for HTTP-01 answers",
	"--http.s3-bucket":            "the S3 SDK is not part of this build",
	"LEGO_DEBUG_ACME_HTTP_CLIENT": "a lego debugging switch that dumps the CA's HTTP exchanges; zoku's --log.level debug logs the ACME steps instead",
}

// legoFlag is one flag as lego defines it.
type legoFlag struct {
	name    string
	aliases []string
	env     string
	def     string // literal default, "" when none or not a literal
	local   bool
}

// legoCommand is one command as lego defines it.
type legoCommand struct {
	name  string
	flags []legoFlag
	subs  []*legoCommand
}

func legoModuleDir(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/go-acme/lego/v5")
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("find lego's module in the module cache (go list -m): %v", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatal("lego's module is not in the module cache; run 'go mod download'")
	}
	return dir
}

// source is the parsed files of a few packages, with their constants.
type source struct {
	funcs  map[string]*ast.FuncDecl // by "pkg.Name"
	consts map[string]string        // by "pkg.Name"
	envs   []string                 // literal "LEGO_*" strings outside hooks
}

func parseLego(t *testing.T, root string) *source {
	t.Helper()
	src := &source{funcs: map[string]*ast.FuncDecl{}, consts: map[string]string{}}
	fset := token.NewFileSet()
	for pkg, dir := range map[string]string{"cmd": "cmd", "flags": "cmd/internal/flags", "internal": "cmd/internal", "storage": "cmd/internal/storage"} {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("lego source %s: %v", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(fset, f, nil, 0)
			if err != nil {
				t.Fatalf("parse %s: %v", f, err)
			}
			for _, d := range file.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if d.Recv == nil {
						src.funcs[pkg+"."+d.Name.Name] = d
					}
				case *ast.GenDecl:
					if d.Tok != token.CONST {
						continue
					}
					for _, s := range d.Specs {
						vs := s.(*ast.ValueSpec)
						for i, n := range vs.Names {
							if i < len(vs.Values) {
								if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
									v, _ := strconv.Unquote(lit.Value)
									src.consts[pkg+"."+n.Name] = v
								}
							}
						}
					}
				}
			}
			ast.Inspect(file, func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if v, _ := strconv.Unquote(lit.Value); strings.HasPrefix(v, "LEGO_") && !strings.HasPrefix(v, "LEGO_HOOK_") && len(v) > len("LEGO_") {
						src.envs = append(src.envs, v)
					}
				}
				return true
			})
		}
	}
	return src
}

// evaluator walks lego's flag and command constructors, with the
// arguments of parameterised helpers bound.
type evaluator struct {
	t   *testing.T
	src *source
}

// str resolves a string expression: a literal, a constant, a parameter.
func (e *evaluator) str(pkg string, x ast.Expr, bound map[string]string) (string, bool) {
	switch x := x.(type) {
	case *ast.BasicLit:
		v, err := strconv.Unquote(x.Value)
		return v, err == nil
	case *ast.Ident:
		if v, ok := bound[x.Name]; ok {
			return v, true
		}
		v, ok := e.src.consts[pkg+"."+x.Name]
		return v, ok
	case *ast.SelectorExpr:
		if id, ok := x.X.(*ast.Ident); ok {
			v, ok := e.src.consts[id.Name+"."+x.Sel.Name]
			return v, ok
		}
	}
	return "", false
}

// callee names the function a call calls, as "pkg.Name", if it is lego's.
func (e *evaluator) callee(pkg string, call *ast.CallExpr) (string, bool) {
	switch f := call.Fun.(type) {
	case *ast.Ident:
		_, ok := e.src.funcs[pkg+"."+f.Name]
		return pkg + "." + f.Name, ok
	case *ast.SelectorExpr:
		if id, ok := f.X.(*ast.Ident); ok {
			_, ok := e.src.funcs[id.Name+"."+f.Sel.Name]
			return id.Name + "." + f.Sel.Name, ok
		}
	}
	return "", false
}

// bind maps a function's parameter names to the call's string arguments.
func (e *evaluator) bind(pkg string, fn *ast.FuncDecl, call *ast.CallExpr, outer map[string]string) map[string]string {
	b := map[string]string{}
	i := 0
	for _, field := range fn.Type.Params.List {
		for _, n := range field.Names {
			if i < len(call.Args) {
				if v, ok := e.str(pkg, call.Args[i], outer); ok {
					b[n.Name] = v
				}
			}
			i++
		}
	}
	return b
}

// flags collects every cli.*Flag literal a function builds, following
// calls into lego's other constructors.
func (e *evaluator) flags(key string, bound map[string]string) []legoFlag {
	fn := e.src.funcs[key]
	pkg := strings.SplitN(key, ".", 2)[0]
	var out []legoFlag
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit:
			sel, ok := n.Type.(*ast.SelectorExpr)
			if !ok || !strings.HasSuffix(sel.Sel.Name, "Flag") {
				return true
			}
			out = append(out, e.flag(pkg, n, bound))
			return false
		case *ast.CallExpr:
			if k, ok := e.callee(pkg, n); ok {
				out = append(out, e.flags(k, e.bind(pkg, e.src.funcs[k], n, bound))...)
				return false
			}
		}
		return true
	})
	return out
}

func (e *evaluator) flag(pkg string, lit *ast.CompositeLit, bound map[string]string) legoFlag {
	var f legoFlag
	for _, el := range lit.Elts {
		kv := el.(*ast.KeyValueExpr)
		switch kv.Key.(*ast.Ident).Name {
		case "Name":
			f.name, _ = e.str(pkg, kv.Value, bound)
		case "Aliases":
			for _, a := range kv.Value.(*ast.CompositeLit).Elts {
				v, _ := e.str(pkg, a, bound)
				f.aliases = append(f.aliases, v)
			}
		case "Local":
			f.local = kv.Value.(*ast.Ident).Name == "true"
		case "Value":
			if lit, ok := kv.Value.(*ast.BasicLit); ok {
				f.def = strings.Trim(lit.Value, `"`)
			}
		case "Sources":
			ast.Inspect(kv.Value, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "toEnvName" {
					name, _ := e.str(pkg, call.Args[0], bound)
					f.env = envName(name)
					return false
				}
				return true
			})
		}
	}
	if f.name == "" {
		e.t.Fatalf("a flag of lego's %s has a name this test cannot resolve", pkg)
	}
	return f
}

// command reads a &cli.Command{...} literal.
func (e *evaluator) command(pkg string, lit *ast.CompositeLit) *legoCommand {
	c := &legoCommand{}
	for _, el := range lit.Elts {
		kv := el.(*ast.KeyValueExpr)
		switch kv.Key.(*ast.Ident).Name {
		case "Name":
			c.name, _ = e.str(pkg, kv.Value, nil)
		case "Flags":
			call := kv.Value.(*ast.CallExpr)
			k, ok := e.callee(pkg, call)
			if !ok {
				e.t.Fatalf("lego command %s: flags from an unknown constructor", c.name)
			}
			c.flags = e.flags(k, nil)
		case "Commands":
			c.subs = e.commands(pkg, kv.Value)
		}
	}
	return c
}

// commands reads the sub-commands: a slice literal of constructor calls,
// or a call to a function returning one.
func (e *evaluator) commands(pkg string, x ast.Expr) []*legoCommand {
	var out []*legoCommand
	ast.Inspect(x, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		k, ok := e.callee(pkg, call)
		if !ok {
			return true
		}
		ast.Inspect(e.src.funcs[k].Body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				if sel, ok := n.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Command" {
					out = append(out, e.command(pkg, n))
					return false
				}
			case *ast.CallExpr:
				if _, ok := e.callee(pkg, n); ok {
					out = append(out, e.commands(pkg, n)...)
					return false
				}
			}
			return true
		})
		return false
	})
	return out
}

func legoTree(t *testing.T) (*legoCommand, []string) {
	t.Helper()
	src := parseLego(t, legoModuleDir(t))
	e := &evaluator{t: t, src: src}
	root := src.funcs["cmd.CreateRootCommand"]
	if root == nil {
		t.Fatal("lego's cmd.CreateRootCommand not found: lego's command line changed shape; update this test")
	}
	var tree *legoCommand
	ast.Inspect(root.Body, func(n ast.Node) bool {
		if lit, ok := n.(*ast.CompositeLit); ok && tree == nil {
			if sel, ok := lit.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Command" {
				tree = e.command("cmd", lit)
				return false
			}
		}
		return true
	})
	return tree, src.envs
}

// zokuFlags returns the flags a command of zoku's tree accepts (its own
// and its ancestors' persistent ones).
func zokuCommand(path []string) (*command, []*flagDef) {
	c := tree()
	var inherited []*flagDef
	for _, p := range path {
		for _, d := range c.flags {
			if !d.local {
				inherited = append(inherited, d)
			}
		}
		if c = c.sub(p); c == nil {
			return nil, nil
		}
	}
	return c, concat(inherited, c.flags)
}

func TestParityWithLegoSource(t *testing.T) {
	lroot, envs := legoTree(t)
	if len(lroot.subs) < 6 {
		t.Fatalf("read only %d commands of lego; the reader no longer understands lego's source", len(lroot.subs))
	}
	used := map[string]bool{}
	unsupported := func(name string) bool {
		if _, ok := knowinglyUnsupported[name]; ok {
			used[name] = true
			return true
		}
		return false
	}
	nFlags := 0
	var walk func(c *legoCommand, path []string, inherited []legoFlag)
	walk = func(c *legoCommand, path []string, inherited []legoFlag) {
		where := strings.Join(append([]string{"lego"}, path...), " ")
		zc, zflags := zokuCommand(path)
		if zc == nil {
			t.Errorf("%s: command missing from zoku's lego personality", where)
			return
		}
		byName := map[string]*flagDef{}
		for _, d := range zflags {
			byName[d.name] = d
			for _, a := range d.aliases {
				byName[a] = d
			}
		}
		for _, f := range append(append([]legoFlag(nil), inherited...), c.flags...) {
			nFlags++
			d, ok := byName[f.name]
			if !ok || d.name != f.name {
				if !unsupported("--" + f.name) {
					t.Errorf("%s: flag --%s is not accepted", where, f.name)
				}
				continue
			}
			if _, ok := knowinglyUnsupported["--"+f.name]; ok {
				used["--"+f.name] = true
				if _, refused := unavailable[f.name]; !refused {
					t.Errorf("--%s is listed as unsupported but not refused with a reason (unavailable)", f.name)
				}
			}
			for _, a := range f.aliases {
				if byName[a] != d {
					t.Errorf("%s: -%s is not an alias of --%s", where, a, f.name)
				}
			}
			if f.env != "" && d.env != f.env && !unsupported(f.env) {
				t.Errorf("%s: --%s is read from %s in lego, from %q here", where, f.name, f.env, d.env)
			}
			if f.def != "" && !sameDefault(f.def, d.def) {
				t.Errorf("%s: --%s defaults to %q in lego, %q here", where, f.name, f.def, d.def)
			}
			if f.local != d.local {
				t.Errorf("%s: --%s is local=%v in lego, %v here", where, f.name, f.local, d.local)
			}
		}
		var next []legoFlag
		next = append(next, inherited...)
		for _, f := range c.flags {
			if !f.local {
				next = append(next, f)
			}
		}
		for _, s := range c.subs {
			walk(s, append(append([]string(nil), path...), s.name), next)
		}
	}
	walk(lroot, nil, nil)
	if nFlags < 150 {
		t.Errorf("read only %d flags of lego; the reader no longer understands lego's source", nFlags)
	}
	// Variables lego reads outside its flags.
	accepted := map[string]bool{}
	var all func(c *command)
	all = func(c *command) {
		for _, d := range c.flags {
			accepted[d.env] = true
		}
		for _, s := range c.subs {
			all(s)
		}
	}
	all(tree())
	sort.Strings(envs)
	for _, v := range envs {
		if !accepted[v] && !unsupported(v) {
			t.Errorf("lego reads %s; zoku's lego personality does not", v)
		}
	}
	for k := range knowinglyUnsupported {
		if !used[k] {
			t.Errorf("knowinglyUnsupported lists %s, which lego v5 no longer has: remove it", k)
		}
	}
}

// The command list zoku prints is lego's.
func TestCommandListIsLegos(t *testing.T) {
	lroot, _ := legoTree(t)
	var want []string
	var walk func(c *legoCommand, prefix string)
	walk = func(c *legoCommand, prefix string) {
		for _, s := range c.subs {
			p := strings.TrimSpace(prefix + " " + s.name)
			want = append(want, p)
			walk(s, p)
		}
	}
	walk(lroot, "")
	sort.Strings(want)
	if got := commandPaths(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("commands:\n got %v\nwant %v", got, want)
	}
}

// sameDefault compares a literal default of lego with zoku's (a duration
// literal 0 is zoku's "0s").
func sameDefault(lego, zoku string) bool {
	if lego == "0" && (zoku == "" || zoku == "0s") {
		return true
	}
	return lego == zoku
}
