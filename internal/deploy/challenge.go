package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/go-acme/lego/v5/challenge"

	"github.com/zoku/zoku/internal/deploy/internal/certfile"
	"github.com/zoku/zoku/internal/deploy/internal/probe"
)

// selfCheck fetches an HTTP-01 answer the way the CA will before the CA
// is asked to, so a policy in the wrong place or a load balancer that does
// not forward the path fails here, not against the CA's failed-validation
// limits.
type selfCheck struct {
	// address is host:port to fetch from; empty means <domain>:80.
	address string
	log     *slog.Logger
}

// checked is a provider whose Present succeeds only when the answer is
// reachable.
type checked struct {
	inner challenge.Provider
	sc    *selfCheck
}

var _ challenge.Provider = (*checked)(nil)

// wrap adds t's self-check to p.
func (t *target) wrap(p challenge.Provider) challenge.Provider {
	if t.selfCheck == nil || p == nil {
		return p
	}
	return &checked{inner: p, sc: t.selfCheck}
}

// Present puts the answer in place and fetches it, three times at most.
func (c *checked) Present(ctx context.Context, domain, token, keyAuth string) error {
	if err := c.inner.Present(ctx, domain, token, keyAuth); err != nil {
		return err
	}
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = probe.HTTP01(ctx, c.sc.address, domain, token, keyAuth); err == nil {
			c.sc.log.Debug("self-check passed", "domain", domain)
			return nil
		}
		if attempt == 3 {
			break
		}
		t := time.NewTimer(time.Duration(attempt) * 500 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			err = errors.Join(err, ctx.Err())
			attempt = 3
		case <-t.C:
		}
	}
	if cerr := c.inner.CleanUp(context.WithoutCancel(ctx), domain, token, keyAuth); cerr != nil {
		c.sc.log.Warn("challenge answer not removed after the failed self-check", "domain", domain, "error", cerr)
	}
	return fmt.Errorf("%w; the CA was not asked to validate", err)
}

// CleanUp removes the answer.
func (c *checked) CleanUp(ctx context.Context, domain, token, keyAuth string) error {
	return c.inner.CleanUp(ctx, domain, token, keyAuth)
}

// webroot answers HTTP-01 with files under a folder a web server serves.
type webroot struct{ dir string }

var _ challenge.Provider = (*webroot)(nil)

func (w *webroot) file(token string) (string, error) {
	if token == "" {
		return "", errors.New("webroot: empty token")
	}
	for _, c := range token {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", errors.New("webroot: token is not base64url; refusing to write it")
		}
	}
	return filepath.Join(w.dir, ".well-known", "acme-challenge", token), nil
}

// Present writes the key authorization, readable by the web server (0644:
// it is no secret, the CA publishes it).
func (w *webroot) Present(_ context.Context, _, token, keyAuth string) error {
	p, err := w.file(token)
	if err != nil {
		return err
	}
	if err := certfile.WriteAtomic(p, []byte(keyAuth), 0o644); err != nil {
		return fmt.Errorf("webroot: write the challenge file under %s: %w", w.dir, noPath(err))
	}
	return nil
}

// CleanUp removes the file.
func (w *webroot) CleanUp(_ context.Context, _, token, _ string) error {
	p, err := w.file(token)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("webroot: remove the challenge file under %s: %w", w.dir, noPath(err))
	}
	return nil
}

// noPath drops the file name from a file error: a challenge file is named
// after its token, which stays out of messages.
func noPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
