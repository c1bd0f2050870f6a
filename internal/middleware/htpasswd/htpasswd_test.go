package htpasswd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// demo is user "demo", password "demo", bcrypt cost 5 (htpasswd -B).
const demo = "demo:$2y$05$Cpxsq0StSsHkivJI020pvuJKAy2RsS9v8aFsTrW/nZT1ED9NfEOLK"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
		users            int
	}{
		{"one user, comments and blank lines", "# staff\n\n" + demo + "\r\n", "", 1},
		{"two users", demo + "\n" + strings.Replace(demo, "demo:", "other:", 1) + "\n", "", 2},
		{"no colon", "demo\n", "f:1: not a user:hash line", 0},
		{"empty user", ":" + demo[5:] + "\n", "f:1: not a user:hash line", 0},
		{"twice", demo + "\n" + demo + "\n", `f:2: user "demo" is listed twice`, 0},
		{"md5", "# x\na:$apr1$Fh6iT7bq$ZZsNr6jUP0Ha3KsYLEsgc/\n", `f:2: user "a": has an MD5 ($apr1$) hash`, 0},
		{"sha", "a:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", "has a SHA-1 ({SHA}) hash", 0},
		{"sha512 crypt", "a:$6$salt$hash\n", "has a crypt(3) hash", 0},
		{"plain", "a:hunter2\n", "not a bcrypt hash (plain text or DES crypt)", 0},
		{"damaged bcrypt", "a:$2y$05$short\n", "has a damaged bcrypt hash", 0},
		{"cost too high", "a:$2y$16$Cpxsq0StSsHkivJI020pvuJKAy2RsS9v8aFsTrW/nZT1ED9NfEOLK\n", "bcrypt cost of 16, above 15", 0},
		{"no users", "# nobody\n", "f has no users", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			users, err := Parse("f", []byte(tc.data))
			if tc.want == "" {
				if err != nil || len(users) != tc.users {
					t.Fatalf("got %d users, %v; want %d", len(users), err, tc.users)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			for _, secret := range []string{"hunter2", "ZZsNr6", "W6ph5Mm5", "Cpxsq0St"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows a hash or password: %v", err)
				}
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte(strings.Repeat("#", MaxFileBytes+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(big); err == nil || !strings.Contains(err.Error(), "larger than 4 MiB") {
		t.Errorf("big file: %v", err)
	}
}
