package middleware

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoku/zoku/internal/testkit/need"
)

// htpasswdFile makes an htpasswd file with Debian's htpasswd (apache2-utils),
// hash being its flag (-B bcrypt, -m MD5, -s SHA-1); the password goes in
// on standard input, never in argv.
func htpasswdFile(t *testing.T, hash string, users ...string) string {
	t.Helper()
	bin := need.Binary(t, "htpasswd", "apt-get install -y apache2-utils")
	file := filepath.Join(t.TempDir(), "users.htpasswd")
	for i := 0; i+1 < len(users); i += 2 {
		args := []string{hash, "-i"}
		if i == 0 {
			args = append(args, "-c")
		}
		cmd := exec.Command(bin, append(args, file, users[i])...)
		cmd.Stdin = strings.NewReader(users[i+1] + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("htpasswd: %v: %s", err, out)
		}
	}
	return file
}

func TestBasicAuth(t *testing.T) {
	file := htpasswdFile(t, "-B", "alice", "wonder land", "bob", "builder")
	c := parse(t, "  m: {basicAuth: {usersFile: \"${F}\", realm: staff, userHeader: X-User}}\n", func(string) string { return file })
	m, err := Build("m", c.Middlewares["m"], Env{})
	if err != nil {
		t.Fatal(err)
	}
	var s seen
	next := m.Wrap(terminal(&s, nil))
	for _, tc := range []struct {
		name, user, pass string
		want             int
	}{
		{"right password", "alice", "wonder land", 200},
		{"right again (remembered)", "alice", "wonder land", 200},
		{"other user", "bob", "builder", 200},
		{"wrong password", "alice", "wonderland", 401},
		{"unknown user", "carol", "builder", 401},
		{"no credentials", "", "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := get("/", "X-User", "forged")
			if tc.user != "" {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			rec := do(next, withTimeout(t, req))
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
			if tc.want == 401 {
				if got := rec.Header().Get("WWW-Authenticate"); got != `Basic realm="staff", charset="UTF-8"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				return
			}
			h := s.get().header
			if h.Get("Authorization") != "" || h.Get("X-User") != tc.user {
				t.Errorf("service saw Authorization %q and X-User %q; want none and %q", h.Get("Authorization"), h.Get("X-User"), tc.user)
			}
		})
	}
}

func TestBasicAuthRefusesWeakHashes(t *testing.T) {
	for _, tc := range []struct{ flag, want string }{
		{"-m", "MD5 ($apr1$) hash, which zoku refuses"},
		{"-s", "SHA-1 ({SHA}) hash, which zoku refuses"},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			file := htpasswdFile(t, tc.flag, "alice", "secret-pw-1")
			src := "entryPoints:\n  web: {address: \"127.0.0.1:0\"}\nmiddlewares:\n  b: {basicAuth: {usersFile: \"" + file + "\"}}\n"
			_, err := parseErr(src)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `user "alice"`) {
				t.Fatalf("got %v, want %q naming the user", err, tc.want)
			}
			raw, _ := os.ReadFile(file)
			hash := strings.TrimSpace(strings.SplitN(string(raw), ":", 2)[1])
			if strings.Contains(err.Error(), hash) || strings.Contains(err.Error(), "secret-pw-1") {
				t.Errorf("error shows the hash or password: %v", err)
			}
		})
	}
}

func TestForwardAuth(t *testing.T) {
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			if r.Header.Get("X-Forwarded-Uri") != "/app?x=1" || r.Header.Get("X-Forwarded-Method") != "POST" || r.Header.Get("X-Forwarded-For") != "192.0.2.1" {
				http.Error(w, "bad forwarded headers: "+r.Header.Get("X-Forwarded-Uri")+" "+r.Header.Get("X-Forwarded-Method")+" "+r.Header.Get("X-Forwarded-For"), 500)
				return
			}
			w.Header().Set("X-Auth-User", "alice")
			w.Header().Set("X-Other", "not copied")
			w.WriteHeader(204)
		case "Bearer hang":
			<-r.Context().Done() // until zoku gives up
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="app"`)
			http.Error(w, "log in first", http.StatusUnauthorized)
		}
	}))
	defer auth.Close()
	down, _ := net.Listen("tcp", "127.0.0.1:0")
	downAddr := down.Addr().String()
	_ = down.Close() // nothing listens there now

	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	mw := func(addr string) Next {
		c := parse(t, "  m: {forwardAuth: {address: \""+addr+"\", authResponseHeaders: [X-Auth-User], timeout: 300ms}}\n", nil)
		m, err := Build("m", c.Middlewares["m"], Env{Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { Close(m) })
		var s seen
		return m.Wrap(terminal(&s, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "user="+r.Header.Get("X-Auth-User")+" other="+r.Header.Get("X-Other"))
		}))
	}
	up := mw(auth.URL + "/check")
	req := func(token string) *http.Request {
		r := httptest.NewRequest("POST", "/app?x=1", strings.NewReader("body"))
		r.RemoteAddr = "192.0.2.1:5555"
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("X-Auth-User", "forged")
		return withTimeout(t, r)
	}
	if rec := do(up, req("good")); rec.Code != 200 || rec.Body.String() != "user=alice other=" {
		t.Errorf("allowed: got %d %q, want 200 user=alice and nothing else copied", rec.Code, rec.Body.String())
	}
	rec := do(up, req("bad"))
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "log in first") || rec.Header().Get("WWW-Authenticate") != `Bearer realm="app"` {
		t.Errorf("refused: got %d %q %v, want the auth server's 401", rec.Code, rec.Body.String(), rec.Header())
	}
	start := time.Now()
	if rec := do(up, req("hang")); rec.Code != http.StatusBadGateway {
		t.Errorf("auth server too slow: got %d, want 502", rec.Code)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("the timeout did not end the wait")
	}
	if rec := do(mw("http://"+downAddr+"/check"), req("secret-token-value")); rec.Code != http.StatusBadGateway {
		t.Errorf("auth server down: got %d, want 502", rec.Code)
	}
	if !strings.Contains(logs.String(), "authentication server unreachable") {
		t.Errorf("no log line for the unreachable server: %s", logs.String())
	}
	if strings.Contains(logs.String(), "secret-token-value") || strings.Contains(logs.String(), "Bearer") {
		t.Errorf("a header reached the log: %s", logs.String())
	}
}
