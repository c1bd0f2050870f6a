// Package htpasswd reads Apache htpasswd files of bcrypt hashes (made with
// `htpasswd -B`), for the basicAuth middleware. Other hash formats (MD5
// "$apr1$", SHA-1 "{SHA}", crypt, plain text) are refused with the line
// that holds them: they are too fast to guess against. Errors name the
// file, the line and the user, never a hash.
package htpasswd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// MaxFileBytes bounds an htpasswd file (about 50,000 users).
const MaxFileBytes = 4 << 20

// MaxCost is the highest bcrypt cost accepted: each check of a wrong
// password costs 2^cost rounds, and 15 takes about a second on one core.
const MaxCost = 15

// Users maps user names to their bcrypt hashes.
type Users map[string][]byte

// ReadFile reads and parses the htpasswd file at path.
func ReadFile(path string) (Users, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: cannot read %s: %w; check the path and its permissions", path, unwrap(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("htpasswd: cannot read %s: %w", path, unwrap(err))
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("htpasswd: %s is larger than %d MiB; is it an htpasswd file?", path, MaxFileBytes>>20)
	}
	return Parse(path, data)
}

// Parse parses htpasswd data; name is the file name in errors. Blank
// lines and lines starting with # are skipped.
func Parse(name string, data []byte) (Users, error) {
	users := Users{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxFileBytes)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" || strings.HasPrefix(strings.TrimSpace(text), "#") {
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("htpasswd: %s:%d: not a user:hash line; make the file with htpasswd -B", name, line)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("htpasswd: %s:%d: user %q is listed twice; keep one line", name, line, clip(user))
		}
		if err := checkHash(hash); err != nil {
			return nil, fmt.Errorf("htpasswd: %s:%d: user %q: %w", name, line, clip(user), err)
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("htpasswd: %s: %w", name, err)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("htpasswd: %s has no users; add one with htpasswd -B %s <user>", name, name)
	}
	return users, nil
}

// checkHash accepts a well-formed bcrypt hash of cost MaxCost or less.
func checkHash(hash string) error {
	const redo = "re-create it with htpasswd -B (bcrypt)"
	switch {
	case strings.HasPrefix(hash, "$apr1$"):
		return fmt.Errorf("has an MD5 ($apr1$) hash, which zoku refuses (too fast to guess); %s", redo)
	case strings.HasPrefix(hash, "{SHA}"):
		return fmt.Errorf("has a SHA-1 ({SHA}) hash, which zoku refuses (too fast to guess); %s", redo)
	case strings.HasPrefix(hash, "$1$"), strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		return fmt.Errorf("has a crypt(3) hash, which zoku does not accept; %s", redo)
	case !strings.HasPrefix(hash, "$2"):
		return fmt.Errorf("has a password that is not a bcrypt hash (plain text or DES crypt); %s", redo)
	}
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return fmt.Errorf("has a damaged bcrypt hash; %s", redo)
	}
	if cost > MaxCost {
		return fmt.Errorf("has a bcrypt cost of %d, above %d (each wrong password would take seconds of CPU); re-create it with htpasswd -B -C 10", cost, MaxCost)
	}
	return nil
}

// clip shortens a user name quoted in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
