// Command gen writes zoku's DNS provider tables from the lego module in the
// build's module graph. It is run by `go generate` in package dns01:
//
//	go generate ./internal/challenge/dns01
//
// It reads each provider's descriptor, providers/dns/<code>/<code>.toml, and
// keeps facts only: the code, the aliases, the display name and the
// variable names of [Configuration.Credentials] and
// [Configuration.Additional], in lego's order. A descriptor that lists no
// variable at all (exec, hyperone, manual) falls back to the provider's Go
// source: the names passed to env.Get are the credentials and the other
// exported Env constants are additional.
//
// A provider whose packages cannot all be loaded from this module's
// dependencies (`go list` reports dependency errors: the module proxy does
// not serve its SDK) is marked unavailable and not registered.
//
// Two files are written: the fact table zz_gen_providers.go in package
// dns01 (no imports, so every test build has the metadata) and
// catalogue/zz_gen_catalogue.go, which imports and registers every
// available provider except the built-ins that dns01 registers itself.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

const (
	legoModule  = "github.com/go-acme/lego/v5"
	providerPkg = legoModule + "/providers/dns/"
)

// provider holds the facts kept about one lego DNS provider.
type provider struct {
	Code        string
	Name        string
	Aliases     []string
	Credentials []string
	Additional  []string
	Unavailable bool
}

// descriptor is the part of a lego provider descriptor that is decoded.
type descriptor struct {
	Name    string   `toml:"Name"`
	Code    string   `toml:"Code"`
	Aliases []string `toml:"Aliases"`
	Config  struct {
		Credentials map[string]string `toml:"Credentials"`
		Additional  map[string]string `toml:"Additional"`
	} `toml:"Configuration"`
}

var envName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

func main() {
	log.SetFlags(0)
	log.SetPrefix("dns01/gen: ")
	builtin := flag.String("builtin", "", "comma-separated codes registered by package dns01 itself")
	factsOut := flag.String("facts", "zz_gen_providers.go", "output file of the fact table")
	catOut := flag.String("catalogue", filepath.Join("catalogue", "zz_gen_catalogue.go"), "output file of the registrations")
	flag.Parse()

	dir, version, err := legoDir()
	if err != nil {
		log.Fatal(err)
	}
	providers, err := readProviders(filepath.Join(dir, "providers", "dns"))
	if err != nil {
		log.Fatal(err)
	}
	if err := markUnavailable(providers); err != nil {
		log.Fatal(err)
	}
	builtins := strings.Split(*builtin, ",")
	for _, b := range builtins {
		if !slices.ContainsFunc(providers, func(p provider) bool { return p.Code == b }) {
			log.Fatalf("built-in %q is not a lego %s provider", b, version)
		}
	}
	if err := write(*factsOut, factsFile(providers, version)); err != nil {
		log.Fatal(err)
	}
	if err := write(*catOut, catalogueFile(providers, builtins, version)); err != nil {
		log.Fatal(err)
	}
	n := 0
	for _, p := range providers {
		if !p.Unavailable {
			n++
		}
	}
	log.Printf("lego %s: %d providers, %d available, %d unavailable", version, len(providers), n, len(providers)-n)
}

// legoDir returns the lego module's folder and version in this build's
// module graph.
func legoDir() (string, string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}} {{.Version}}", legoModule).Output()
	if err != nil {
		return "", "", fmt.Errorf("go list -m %s: %w", legoModule, err)
	}
	dir, version, ok := strings.Cut(strings.TrimSpace(string(out)), " ")
	if !ok || dir == "" {
		return "", "", fmt.Errorf("go list -m %s: no module folder (run go mod download)", legoModule)
	}
	return dir, version, nil
}

// readProviders reads every providers/dns/<code>/<code>.toml, sorted by code.
func readProviders(root string) ([]provider, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []provider
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "internal" {
			continue
		}
		p, err := readProvider(filepath.Join(root, e.Name()), e.Name())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b provider) int { return strings.Compare(a.Code, b.Code) })
	return out, nil
}

func readProvider(dir, pkg string) (provider, error) {
	raw, err := os.ReadFile(filepath.Join(dir, pkg+".toml"))
	if err != nil {
		return provider{}, err
	}
	var d descriptor
	if err := toml.Unmarshal(raw, &d); err != nil {
		return provider{}, err
	}
	if d.Code != pkg {
		return provider{}, fmt.Errorf("code %q differs from its package name", d.Code)
	}
	p := provider{Code: d.Code, Name: d.Name, Aliases: d.Aliases}
	// The decoded maps lose lego's order; read the names in file order and
	// check them against the decoded keys.
	p.Credentials, p.Additional = sectionKeys(raw)
	if err := sameKeys(p.Credentials, d.Config.Credentials); err != nil {
		return provider{}, fmt.Errorf("credentials: %w", err)
	}
	if err := sameKeys(p.Additional, d.Config.Additional); err != nil {
		return provider{}, fmt.Errorf("additional: %w", err)
	}
	p.Credentials = envNames(p.Credentials)
	p.Additional = envNames(p.Additional)
	if len(p.Credentials)+len(p.Additional) == 0 {
		p.Credentials, p.Additional, err = sourceNames(dir)
		if err != nil {
			return provider{}, err
		}
	}
	if p.Name == "" {
		return provider{}, errors.New("no display name")
	}
	return p, nil
}

// sectionKeys returns the keys of [Configuration.Credentials] and
// [Configuration.Additional] in file order.
func sectionKeys(raw []byte) (creds, additional []string) {
	var cur *[]string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			switch line {
			case "[Configuration.Credentials]":
				cur = &creds
			case "[Configuration.Additional]":
				cur = &additional
			default:
				cur = nil
			}
			continue
		}
		if cur == nil || line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, _, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key = strings.Trim(strings.TrimSpace(key), `'"`)
		*cur = append(*cur, key)
	}
	return creds, additional
}

func sameKeys(ordered []string, decoded map[string]string) error {
	if len(ordered) != len(decoded) {
		return fmt.Errorf("read %d keys, decoded %d", len(ordered), len(decoded))
	}
	for _, k := range ordered {
		if _, ok := decoded[k]; !ok {
			return fmt.Errorf("key %q not decoded", k)
		}
	}
	return nil
}

// envNames keeps the keys that are environment variable names (lego also
// lists prose keys such as 'Application Default Credentials').
func envNames(keys []string) []string {
	var out []string
	for _, k := range keys {
		if envName.MatchString(k) && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// sourceNames reads a provider's Go source: the names given to env.Get are
// credentials; the other exported Env constants are additional.
func sourceNames(dir string) (creds, additional []string, err error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, nil, err
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, f)
	}
	consts := map[string]ast.Expr{}
	var order []string
	for _, f := range files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						consts[name.Name] = vs.Values[i]
						order = append(order, name.Name)
					}
				}
			}
		}
	}
	value := func(e ast.Expr) (string, bool) { return constString(e, consts, 0) }
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Get" {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "env" {
				return true
			}
			for _, arg := range call.Args {
				if v, ok := value(arg); ok && envName.MatchString(v) && !slices.Contains(creds, v) {
					creds = append(creds, v)
				}
			}
			return true
		})
	}
	for _, name := range order {
		if !strings.HasPrefix(name, "Env") {
			continue
		}
		if v, ok := value(consts[name]); ok && envName.MatchString(v) && !slices.Contains(creds, v) && !slices.Contains(additional, v) {
			additional = append(additional, v)
		}
	}
	return creds, additional, nil
}

// constString evaluates a string constant made of literals, other
// constants and "+".
func constString(e ast.Expr, consts map[string]ast.Expr, depth int) (string, bool) {
	if depth > 10 {
		return "", false
	}
	switch v := e.(type) {
	case *ast.BasicLit:
		if v.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(v.Value)
		return s, err == nil
	case *ast.Ident:
		if c, ok := consts[v.Name]; ok {
			return constString(c, consts, depth+1)
		}
	case *ast.BinaryExpr:
		if v.Op != token.ADD {
			return "", false
		}
		l, ok1 := constString(v.X, consts, depth+1)
		r, ok2 := constString(v.Y, consts, depth+1)
		return l + r, ok1 && ok2
	case *ast.ParenExpr:
		return constString(v.X, consts, depth+1)
	}
	return "", false
}

// markUnavailable asks `go list` which provider packages have dependency
// errors in this module (their SDK is not in the module graph).
func markUnavailable(providers []provider) error {
	args := []string{"list", "-e", "-f", "{{.ImportPath}} {{len .DepsErrors}} {{if .Error}}1{{else}}0{{end}}"}
	for _, p := range providers {
		args = append(args, providerPkg+p.Code)
	}
	cmd := exec.Command("go", args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go list the provider packages: %w", err)
	}
	broken := map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			return fmt.Errorf("go list: unexpected line %q", line)
		}
		broken[strings.TrimPrefix(f[0], providerPkg)] = f[1] != "0" || f[2] != "0"
	}
	for i := range providers {
		providers[i].Unavailable = broken[providers[i].Code]
	}
	return nil
}

const header = "// Code generated by dns01/gen from lego %s's provider descriptors; DO NOT EDIT.\n\n"

func factsFile(providers []provider, version string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, header, version)
	b.WriteString("package dns01\n\n")
	fmt.Fprintf(&b, "// legoVersion is the lego version the table below was generated from.\nconst legoVersion = %q\n\n", version)
	b.WriteString("// facts lists every DNS provider of lego, sorted by code.\nvar facts = []fact{\n")
	for _, p := range providers {
		fmt.Fprintf(&b, "\t{code: %q, name: %q", p.Code, p.Name)
		if len(p.Aliases) > 0 {
			fmt.Fprintf(&b, ", aliases: %s", goStrings(p.Aliases))
		}
		if len(p.Credentials) > 0 {
			fmt.Fprintf(&b, ", credentials: %s", goStrings(p.Credentials))
		}
		if len(p.Additional) > 0 {
			fmt.Fprintf(&b, ", additional: %s", goStrings(p.Additional))
		}
		if p.Unavailable {
			b.WriteString(", unavailable: true")
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func catalogueFile(providers []provider, builtins []string, version string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, header, version)
	b.WriteString("package catalogue\n\nimport (\n")
	var codes []string
	for _, p := range providers {
		if p.Unavailable || slices.Contains(builtins, p.Code) {
			continue
		}
		codes = append(codes, p.Code)
		fmt.Fprintf(&b, "\t%q\n", providerPkg+p.Code)
	}
	b.WriteString("\n\t\"github.com/zoku/zoku/internal/challenge/dns01\"\n)\n\n")
	b.WriteString("func init() {\n")
	for _, c := range codes {
		fmt.Fprintf(&b, "\tdns01.Register(%q, dns01.Adapt(%s.NewDNSProvider))\n", c, c)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func goStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[]string{" + strings.Join(q, ", ") + "}"
}

// write formats src and writes it to path when it changed.
func write(path string, src []byte) error {
	out, err := format.Source(src)
	if err != nil {
		return fmt.Errorf("format %s: %w", path, err)
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, out) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}
