package legocli

import (
	"context"
	"os"
	"sort"
	"time"

	"github.com/go-acme/lego/v5/certcrypto"

	"github.com/zoku/zoku/internal/hook"
	"github.com/zoku/zoku/internal/storage"
)

// hooks runs lego's pre, deploy and post hooks of one certificate with
// lego v5's variables: the account's from the start, the certificate's
// name, key type and names from the pre-hook on, its paths from the deploy
// hook on; the post-hook sees what was known by then. A deploy hook also
// gets lego v4's variables (LEGO_CERT_*), which v4 scripts read. Commands
// are split at white space and run without a shell, as lego runs them.
type hooks struct {
	inv  *invocation
	sess Session
	meta map[string]string
	v4   map[string]string
}

func newHooks(inv *invocation, sess Session) *hooks {
	iss := sess.Issuer()
	return &hooks{inv: inv, sess: sess, v4: map[string]string{}, meta: map[string]string{
		"LEGO_HOOK_ACCOUNT_ID":     iss.AccountID(),
		"LEGO_HOOK_ACCOUNT_EMAIL":  iss.Email(),
		"LEGO_HOOK_ACCOUNT_SERVER": iss.Server(),
	}}
}

func (h *hooks) certificate(name string, domains []string, kt certcrypto.KeyType) {
	if name != "" {
		h.meta["LEGO_HOOK_CERT_NAME"] = name
		h.meta["LEGO_HOOK_CERT_NAME_SANITIZED"] = storage.SanitizedName(name)
	}
	h.meta["LEGO_HOOK_CERT_KEY_TYPE"] = string(kt)
	h.meta["LEGO_HOOK_CERT_DOMAINS"] = join(domains)
}

func (h *hooks) pre(ctx context.Context, name string, domains []string, kt certcrypto.KeyType) error {
	if h.inv.flags.String("pre-hook") == "" {
		return nil
	}
	h.certificate(name, domains, kt)
	return h.launch(ctx, "pre-hook", "pre hook", nil)
}

func (h *hooks) deploy(ctx context.Context, b *storage.Bundle) error {
	if h.inv.flags.String("deploy-hook") == "" {
		return nil
	}
	h.certificate(b.Meta.ID, b.Meta.Domains, b.Meta.KeyType)
	p := h.sess.Store().CertPaths(b.Meta.ID)
	h.meta["LEGO_HOOK_CERT_PATH"] = p.Cert
	h.meta["LEGO_HOOK_CERT_KEY_PATH"] = p.Key
	if len(b.IssuerCertificate) > 0 {
		h.meta["LEGO_HOOK_ISSUER_CERT_PATH"] = p.Issuer
	}
	if h.inv.flags.Bool("pem") {
		h.meta["LEGO_HOOK_CERT_PEM_PATH"] = p.PEM
		h.v4["LEGO_CERT_PEM_PATH"] = p.PEM
	}
	if h.inv.flags.Bool("pfx") {
		h.meta["LEGO_HOOK_CERT_PFX_PATH"] = p.PFX
		h.v4["LEGO_CERT_PFX_PATH"] = p.PFX
	}
	main := ""
	if len(b.Meta.Domains) > 0 {
		main = b.Meta.Domains[0]
	}
	h.v4["LEGO_ACCOUNT_EMAIL"] = h.meta["LEGO_HOOK_ACCOUNT_EMAIL"]
	h.v4["LEGO_CERT_DOMAIN"] = main
	h.v4["LEGO_CERT_PATH"] = p.Cert
	h.v4["LEGO_CERT_KEY_PATH"] = p.Key
	if err := h.launch(ctx, "deploy-hook", "deploy hook", h.v4); err != nil {
		h.sess.Logger().Error("deploy hook failed", "cert_name", b.Meta.ID, "error", err)
		return err
	}
	return nil
}

// post runs the post-hook; its failure is logged (the order's own result
// is what the command reports), as lego does.
func (h *hooks) post(ctx context.Context) {
	if h.inv.flags.String("post-hook") == "" {
		return
	}
	if err := h.launch(context.WithoutCancel(ctx), "post-hook", "post hook", nil); err != nil {
		h.sess.Logger().Error("post hook failed", "error", err)
	}
}

func (h *hooks) launch(ctx context.Context, flag, what string, extra map[string]string) error {
	f := h.inv.flags
	var env []string
	for _, m := range []map[string]string{h.meta, extra} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env = append(env, k+"="+m[k])
		}
	}
	timeout := f.Duration(flag + "-timeout")
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	// lego shows the hook's output, both streams, on its stdout.
	out := h.inv.env.Stdout
	if out == nil {
		out = os.Stdout
	}
	return hook.Exec(ctx, f.String(flag), env, timeout, out, out, what)
}
