package dns01

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clearEnv unsets (for the test) each variable and its _FILE variant, so a
// developer's or CI's own credentials cannot leak into a test.
func clearEnv(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		t.Setenv(n, "")
		t.Setenv(n+"_FILE", "")
	}
}

// writeFile writes content to a new file in a test folder and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	return p
}

func TestNewProviderMissingCredentials(t *testing.T) {
	tests := []struct {
		code  string
		clear []string
		want  string
	}{
		{"iijdpf", []string{"IIJ_DPF_API_TOKEN", "IIJ_DPF_DPM_SERVICE_CODE"},
			`dns-01: provider "iijdpf" is missing credentials: set IIJ_DPF_API_TOKEN, IIJ_DPF_DPM_SERVICE_CODE (or IIJ_DPF_API_TOKEN_FILE naming a file); 'zoku dns providers iijdpf' lists all its variables`},
		{"exec", []string{"EXEC_PATH"},
			`dns-01: provider "exec" is missing credentials: set EXEC_PATH (or EXEC_PATH_FILE naming a file); 'zoku dns providers exec' lists all its variables`},
		{"httpreq", []string{"HTTPREQ_ENDPOINT"},
			`dns-01: provider "httpreq" is missing credentials: set HTTPREQ_ENDPOINT (or HTTPREQ_ENDPOINT_FILE naming a file); 'zoku dns providers httpreq' lists all its variables`},
		{"rfc2136", []string{"DNSUPDATE_NAMESERVER", "RFC2136_NAMESERVER"},
			`dns-01: provider "dnsupdate" is missing credentials: set DNSUPDATE_NAMESERVER (or DNSUPDATE_NAMESERVER_FILE naming a file); 'zoku dns providers dnsupdate' lists all its variables`},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			clearEnv(t, tt.clear...)
			p, err := NewProvider(tt.code)
			if err == nil {
				t.Fatalf("NewProvider(%q): got a provider, want a missing-credentials error", tt.code)
			}
			if p != nil {
				t.Errorf("NewProvider(%q): got provider %#v with the error, want nil", tt.code, p)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
			if !errors.Is(err, ErrMissingCredentials) {
				t.Errorf("errors.Is(err, ErrMissingCredentials): got false, want true")
			}
		})
	}
}

func TestNewProviderFileVariant(t *testing.T) {
	clearEnv(t, "IIJ_DPF_API_TOKEN", "IIJ_DPF_DPM_SERVICE_CODE")
	t.Setenv("IIJ_DPF_API_TOKEN_FILE", writeFile(t, "token", "file-token\n"))
	t.Setenv("IIJ_DPF_DPM_SERVICE_CODE", "dpm0000001")
	p, err := NewProvider("iijdpf")
	if err != nil {
		t.Fatalf("NewProvider(iijdpf) with IIJ_DPF_API_TOKEN_FILE: %v", err)
	}
	if p == nil {
		t.Fatalf("NewProvider(iijdpf): got nil provider")
	}

	// A _FILE that cannot be used counts as unset, and the error says why.
	absent := filepath.Join(t.TempDir(), "absent")
	empty := writeFile(t, "empty", "\n")
	tests := []struct{ name, file, wantSuffix string }{
		{"unreadable file", absent, "; IIJ_DPF_API_TOKEN_FILE cannot be read: open " + absent + ": no such file or directory"},
		{"empty file", empty, "; IIJ_DPF_API_TOKEN_FILE names an empty file (" + empty + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("IIJ_DPF_API_TOKEN_FILE", tt.file)
			_, err := NewProvider("iijdpf")
			if !errors.Is(err, ErrMissingCredentials) {
				t.Fatalf("got %v, want a missing-credentials error", err)
			}
			if !strings.HasSuffix(err.Error(), tt.wantSuffix) {
				t.Errorf("error:\n got %s\nwant suffix %s", err, tt.wantSuffix)
			}
		})
	}
}

// TestHTTPReqFileVariantEndToEnd proves that values from _FILE variables
// reach the wire: lego's httpreq provider posts to a real local server with
// the endpoint and password read from files.
func TestHTTPReqFileVariantEndToEnd(t *testing.T) {
	type call struct {
		path, user, pass string
		body             map[string]string
	}
	var (
		mu    sync.Mutex
		calls []call
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		var body map[string]string
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		calls = append(calls, call{r.URL.Path, user, pass, body})
		mu.Unlock()
	}))
	defer srv.Close()

	clearEnv(t, "HTTPREQ_ENDPOINT", "HTTPREQ_USERNAME", "HTTPREQ_PASSWORD", "HTTPREQ_MODE")
	t.Setenv("HTTPREQ_ENDPOINT_FILE", writeFile(t, "endpoint", srv.URL+"\n"))
	t.Setenv("HTTPREQ_USERNAME", "zoku")
	t.Setenv("HTTPREQ_PASSWORD_FILE", writeFile(t, "password", "from-a-file\n"))
	t.Setenv("HTTPREQ_MODE", "RAW")

	p, err := NewProvider("httpreq")
	if err != nil {
		t.Fatalf("NewProvider(httpreq): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Present(ctx, "example.test", "tok", "tok.thumb"); err != nil {
		t.Fatalf("Present: %v", err)
	}
	if err := p.CleanUp(ctx, "example.test", "tok", "tok.thumb"); err != nil {
		t.Fatalf("CleanUp: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 {
		t.Fatalf("calls: got %d, want 2 (%+v)", len(calls), calls)
	}
	for i, wantPath := range []string{"/present", "/cleanup"} {
		c := calls[i]
		if c.path != wantPath || c.user != "zoku" || c.pass != "from-a-file" {
			t.Errorf("call %d: got %s as %q/%q, want %s as %q/%q", i, c.path, c.user, c.pass, wantPath, "zoku", "from-a-file")
		}
		if c.body["domain"] != "example.test" || c.body["token"] != "tok" || c.body["keyAuth"] != "tok.thumb" {
			t.Errorf("call %d body: got %v, want domain/token/keyAuth of the challenge", i, c.body)
		}
	}
}

// TestExecProviderEndToEnd runs lego's exec provider against a real shell
// script that records its arguments.
func TestExecProviderEndToEnd(t *testing.T) {
	script, err := filepath.Abs(filepath.Join("testdata", "record.sh"))
	if err != nil {
		t.Fatalf("script path: %v", err)
	}
	if st, err := os.Stat(script); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("%s must exist and be executable (got %v, %v)", script, st, err)
	}
	const domain, token, keyAuth = "example.test", "tok", "tok.thumb"
	sum := sha256.Sum256([]byte(keyAuth))
	value := base64.RawURLEncoding.EncodeToString(sum[:])

	tests := []struct {
		name     string
		mode     string
		pathFile bool // give the script through EXEC_PATH_FILE
		want     []string
	}{
		{"default mode", "", false, []string{
			"present _acme-challenge.example.test. " + value,
			"cleanup _acme-challenge.example.test. " + value,
		}},
		{"raw mode", "RAW", false, []string{
			"present -- example.test tok tok.thumb",
			"cleanup -- example.test tok tok.thumb",
		}},
		{"path from EXEC_PATH_FILE", "RAW", true, []string{
			"present -- example.test tok tok.thumb",
			"cleanup -- example.test tok tok.thumb",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			record := filepath.Join(t.TempDir(), "calls.txt")
			clearEnv(t, "EXEC_PATH")
			if tt.pathFile {
				t.Setenv("EXEC_PATH_FILE", writeFile(t, "exec-path", script+"\n"))
			} else {
				t.Setenv("EXEC_PATH", script)
			}
			t.Setenv("EXEC_MODE", tt.mode)
			t.Setenv("ZOKU_EXEC_RECORD", record)
			t.Setenv("LEGO_DISABLE_CNAME_SUPPORT", "true") // no DNS lookups from the test

			p, err := NewProvider("exec")
			if err != nil {
				t.Fatalf("NewProvider(exec): %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := p.Present(ctx, domain, token, keyAuth); err != nil {
				t.Fatalf("Present: %v", err)
			}
			if err := p.CleanUp(ctx, domain, token, keyAuth); err != nil {
				t.Fatalf("CleanUp: %v", err)
			}
			data, err := os.ReadFile(record)
			if err != nil {
				t.Fatalf("read record: %v", err)
			}
			got := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("script calls:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
