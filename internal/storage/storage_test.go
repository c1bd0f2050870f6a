package storage

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	t.Run("creates the folder 0700", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "a", "b")

		s, err := Open(root)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}

		if got, want := s.Root(), root; got != want {
			t.Errorf("Root: got %q, want %q", got, want)
		}

		info, err := os.Stat(root)
		if err != nil {
			t.Fatal(err)
		}

		if got := info.Mode().Perm(); got != 0o700 {
			t.Errorf("mode: got %o, want 700", got)
		}

		entries, _ := os.ReadDir(root)
		if len(entries) != 0 {
			t.Errorf("probe left files behind: got %d entries, want 0", len(entries))
		}
	})

	tests := []struct {
		name  string
		path  func(t *testing.T) string
		root  bool // the case only works when not running as root
		wants []string
	}{
		{
			name:  "empty path",
			path:  func(*testing.T) string { return "" },
			wants: []string{"storage: empty folder name"},
		},
		{
			name: "parent is a regular file",
			path: func(t *testing.T) string {
				f := filepath.Join(t.TempDir(), "file")
				if err := os.WriteFile(f, nil, 0o600); err != nil {
					t.Fatal(err)
				}

				return filepath.Join(f, "lego")
			},
			wants: []string{"is not writable", "choose another folder or fix its permissions"},
		},
		{
			name: "path is a regular file",
			path: func(t *testing.T) string {
				f := filepath.Join(t.TempDir(), "file")
				if err := os.WriteFile(f, nil, 0o600); err != nil {
					t.Fatal(err)
				}

				return f
			},
			wants: []string{"is not writable", "a file, not a folder"},
		},
		{
			name: "read-only folder",
			root: true,
			path: func(t *testing.T) string {
				dir := filepath.Join(t.TempDir(), "ro")
				if err := os.Mkdir(dir, 0o500); err != nil {
					t.Fatal(err)
				}

				t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })

				return dir
			},
			wants: []string{"is not writable", "choose another folder or fix its permissions"},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() == 0 {
				t.Skip("running as root, which ignores folder permissions; the regular-file cases cover this")
			}

			p := tt.path(t)

			_, err := Open(p)
			if err == nil {
				t.Fatalf("Open(%q): got nil error, want one", p)
			}

			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error: got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestSanitizedName(t *testing.T) {
	tests := []struct {
		id, want string
	}{
		{"example.com", "example.com"},
		{"*.example.com", "_.example.com"},
		{"a:b", "a-b"},
		{"[2001:db8::1]", "2001-db8--1"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"*.日本語.jp", "_.xn--wgv71a119e.jp"},
		{"../../etc/passwd", "....etcpasswd"},
		{"you@example.test", "you@example.test"},
		{"a b/c\\d", "abcd"},
	}

	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := SanitizedName(tt.id); got != tt.want {
				t.Errorf("SanitizedName(%q): got %q, want %q", tt.id, got, tt.want)
			}
		})
	}
}

// TestSanitizedASCII checks the fast path against the general one on
// random ASCII IDs, capitals, ':' and '*' included, and that it leaves
// alone what punycode changes ("xn--" labels) or drops.
func TestSanitizedASCII(t *testing.T) {
	ids := []string{"", "example.com", "EXAMPLE.com", "*.example.com", "a:b", "a..b", ".", "-a-.b", "@", "_._", "*:*",
		"xn-a.example", strings.Repeat("a", 300) + ".example"}
	alphabet := "aZ09-_.@*:xn"
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		b := make([]byte, 1+rng.IntN(24))
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		ids = append(ids, string(b), "xn--"+string(b))
	}
	for _, id := range ids {
		fast, ok := sanitizedASCII(id)
		if !ok {
			if !strings.Contains(id, "--") {
				t.Fatalf("sanitizedASCII(%q) did not take it", id)
			}
			continue
		}
		if slow := sanitizedSlow(id); fast != slow {
			t.Fatalf("SanitizedName(%q): fast path %q, general %q", id, fast, slow)
		}
	}
	for _, id := range []string{"bücher.example", "a b", "a/b", "a\\b", "[::1]", "xn--bcher-kva.example", "XN--.example"} {
		if _, ok := sanitizedASCII(id); ok {
			t.Errorf("sanitizedASCII(%q) took an ID it must leave to the general path", id)
		}
	}
}

func TestAccountID(t *testing.T) {
	tests := []struct {
		email, id, want string
	}{
		{"", "", DefaultAccountID},
		{"me@example.test", "", "me@example.test"},
		{"me@example.test", "prod", "prod"},
		{"", "prod", "prod"},
	}

	for _, tt := range tests {
		t.Run(tt.email+"|"+tt.id, func(t *testing.T) {
			if got := AccountID(tt.email, tt.id); got != tt.want {
				t.Errorf("AccountID(%q, %q): got %q, want %q", tt.email, tt.id, got, tt.want)
			}
		})
	}
}

func TestServerHost(t *testing.T) {
	tests := []struct {
		server, want string
		wantErr      bool
	}{
		{server: "https://127.0.0.1:14000/dir", want: "127.0.0.1_14000"},
		{server: "https://acme-v02.api.letsencrypt.org/directory", want: "acme-v02.api.letsencrypt.org"},
		{server: "https://[::1]:14000/dir", want: "[__1]_14000"},
		{server: "acme-v02.api.letsencrypt.org", wantErr: true},
		{server: "", wantErr: true},
	}

	for _, tt := range tests {
		t.Run(tt.server, func(t *testing.T) {
			got, err := serverHost(tt.server)
			if (err != nil) != tt.wantErr {
				t.Fatalf("serverHost(%q) error: got %v, want error %v", tt.server, err, tt.wantErr)
			}

			if got != tt.want {
				t.Errorf("serverHost(%q): got %q, want %q", tt.server, got, tt.want)
			}
		})
	}
}

func TestCertPaths(t *testing.T) {
	s := openTestStore(t)
	p := s.CertPaths("*.example.com")
	base := filepath.Join(s.Root(), "certificates", "_.example.com")

	got := []string{p.Cert, p.Issuer, p.Key, p.JSON, p.PEM}
	want := []string{base + ".crt", base + ".issuer.crt", base + ".key", base + ".json", base + ".pem"}

	for i := range got {
		if got[i] != want[i] {
			t.Errorf("path %d: got %q, want %q", i, got[i], want[i])
		}
	}
}
