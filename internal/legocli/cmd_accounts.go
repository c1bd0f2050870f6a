package legocli

import (
	"bufio"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-acme/lego/v5/certcrypto"

	"github.com/zoku/zoku/internal/acmeclient"
	"github.com/zoku/zoku/internal/storage"
)

// listedAccount is one entry of `lego accounts list --json`, with the
// fields of lego's account.json and the file's path.
type listedAccount struct {
	ID           string          `json:"id,omitempty"`
	Email        string          `json:"email,omitempty"`
	KeyType      string          `json:"keyType,omitempty"`
	Server       string          `json:"server,omitempty"`
	Origin       string          `json:"origin,omitempty"`
	Registration json.RawMessage `json:"registration,omitempty"`
	Path         string          `json:"path,omitempty"`
}

// runAccountsList is `lego accounts list`.
func runAccountsList(_ context.Context, inv *invocation) error {
	if err := inv.refuseUnavailable(); err != nil {
		return err
	}
	path, err := inv.path()
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(path, "accounts", "*", "*", "account.json"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	var out []listedAccount
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var a listedAccount
		if err := json.Unmarshal(raw, &a); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if a.ID == "" { // lego v4's account.json has no id: the folder is it
			a.ID = filepath.Base(filepath.Dir(f))
		}
		a.Path = f
		out = append(out, a)
	}
	w := inv.env.Stdout
	if inv.flags.Bool("json") {
		return json.NewEncoder(w).Encode(out)
	}
	if len(out) == 0 {
		fmt.Fprintln(w, "No accounts found.")
		return nil
	}
	fmt.Fprintln(w, "Accounts:")
	for _, a := range out {
		fmt.Fprintln(w, a.ID)
		fmt.Fprintln(w, "├── Email:", a.Email)
		fmt.Fprintln(w, "├── Server:", a.Server)
		fmt.Fprintln(w, "├── Key Type:", a.KeyType)
		var reg struct {
			Location string `json:"accountURL"`
			URI      string `json:"uri"`
		}
		_ = json.Unmarshal(a.Registration, &reg)
		if u := firstOf(reg.Location, reg.URI); u != "" {
			fmt.Fprintln(w, "├── Account URL:", u)
		}
		fmt.Fprintln(w, "└── Path:", a.Path)
		fmt.Fprintln(w)
	}
	return nil
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// accountSession opens a session for an accounts command.
func (inv *invocation) accountSession(ctx context.Context) (Session, error) {
	if err := inv.refuseUnavailable(); err != nil {
		return nil, err
	}
	o, err := inv.sessionOptions()
	if err != nil {
		return nil, err
	}
	if _, err := certcrypto.ToKeyType(inv.flags.String("key-type")); err != nil {
		return nil, usagef("--key-type %q is not one of %s", inv.flags.String("key-type"), keyTypes)
	}
	o.AccountKeyType = inv.flags.String("key-type")
	return inv.open.Open(ctx, o)
}

// runRegister is `lego accounts register`: create the account at the CA
// (terms of service, EAB) and store it; an account already registered is
// left as it is.
func runRegister(ctx context.Context, inv *invocation) error {
	sess, err := inv.accountSession(ctx)
	if err != nil {
		return err
	}
	defer sess.Close()
	c, err := sess.Issuer().Client(ctx)
	if err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	if reg := c.Account().Registration; reg != nil {
		fmt.Fprintf(inv.env.Stdout, "account %s: %s\n", sess.Issuer().AccountID(), reg.Location)
	}
	return nil
}

// runRecover is `lego accounts recover`: find the account of a private
// key at the CA and store it (account.json and key) under --email or
// --account-id.
func runRecover(ctx context.Context, inv *invocation) error {
	keyFile := inv.flags.String("private-key")
	if keyFile == "" {
		return usagef("--private-key is required: the PEM key of the account to recover")
	}
	key, err := readKey(keyFile)
	if err != nil {
		return fmt.Errorf("--private-key: %w", err)
	}
	sess, err := inv.accountSession(ctx)
	if err != nil {
		return err
	}
	defer sess.Close()
	iss := sess.Issuer()
	if ok, err := inv.confirm(fmt.Sprintf("Recover the account %s at %s?", iss.AccountID(), iss.Server())); err != nil || !ok {
		return err
	}
	cfg := iss.Config().Client
	cfg.Solvers = acmeclient.Solvers{}
	c, err := acmeclient.New(ctx, cfg, &acmeclient.Account{Email: iss.Email(), Key: key})
	if err != nil {
		return err
	}
	reg, err := c.ResolveAccountByKey(ctx)
	if err != nil {
		return err
	}
	return saveAccount(ctx, sess, func(*storage.Account) *storage.Account {
		return &storage.Account{ID: iss.AccountID(), Email: iss.Email(), Server: iss.Server(), Origin: "command", Registration: reg, Key: key}
	})
}

// runKeyRollover is `lego accounts keyrollover`: replace the account's key
// at the CA, then in storage (the old key goes to archives/accounts/).
func runKeyRollover(ctx context.Context, inv *invocation) error {
	sess, err := inv.accountSession(ctx)
	if err != nil {
		return err
	}
	defer sess.Close()
	iss, store := sess.Issuer(), sess.Store()
	if _, err := store.LoadAccount(ctx, iss.Server(), iss.AccountID()); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no account %s for %s in this folder; register it first", iss.AccountID(), iss.Server())
		}
		return err
	}
	if ok, err := inv.confirm(fmt.Sprintf("Replace the key of the account %s at %s?", iss.AccountID(), iss.Server())); err != nil || !ok {
		return err
	}
	var newKey crypto.Signer
	kt := certcrypto.KeyType("")
	if f := inv.flags.String("private-key"); f != "" {
		if newKey, err = readKey(f); err != nil {
			return fmt.Errorf("--private-key: %w", err)
		}
		if kt, err = certcrypto.GetPrivateKeyType(newKey); err != nil {
			return fmt.Errorf("--private-key: %w", err)
		}
	} else {
		kt, _ = certcrypto.ToKeyType(inv.flags.String("key-type"))
		if newKey, err = certcrypto.GeneratePrivateKey(kt); err != nil {
			return fmt.Errorf("generate the new account key: %w", err)
		}
	}
	c, err := iss.Client(ctx)
	if err != nil {
		return err
	}
	if err := c.KeyRollover(ctx, newKey); err != nil {
		return err
	}
	return saveAccount(ctx, sess, func(cur *storage.Account) *storage.Account {
		cur.Key, cur.KeyType = newKey, kt
		return cur
	})
}

// saveAccount stores the account under its storage lock: build gets the
// stored account (nil when none) and returns what to save.
func saveAccount(ctx context.Context, sess Session, build func(cur *storage.Account) *storage.Account) error {
	store, iss := sess.Store(), sess.Issuer()
	lease, err := store.Backend().Lock(ctx, "accounts/"+iss.AccountID())
	if err != nil {
		return fmt.Errorf("account %s: %w", iss.AccountID(), err)
	}
	defer func() { _ = lease.Unlock(context.WithoutCancel(ctx)) }()
	cur, err := store.LoadAccount(ctx, iss.Server(), iss.AccountID())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if errors.Is(err, fs.ErrNotExist) {
		cur = nil
	}
	a := build(cur)
	if err := store.SaveAccount(storage.WithFence(ctx, lease), a); err != nil {
		return fmt.Errorf("save the account: %w", err)
	}
	sess.Logger().Info("account saved", "account", iss.AccountID())
	return nil
}

// confirm asks a Y/n question on stdin (an empty answer is yes), as lego
// does; without an answer (end of input) it is an error.
func (inv *invocation) confirm(question string) (bool, error) {
	r := bufio.NewReader(inv.env.Stdin)
	for range 3 {
		fmt.Fprintln(inv.env.Stdout, question+" Y/n")
		line, err := r.ReadString('\n')
		if err != nil && (!errors.Is(err, io.EOF) || line == "") {
			return false, errors.New("no answer on standard input; answer Y or n")
		}
		switch strings.ToUpper(strings.TrimSpace(line)) {
		case "", "Y", "YES":
			return true, nil
		case "N", "NO":
			fmt.Fprintln(inv.env.Stdout, "Aborted.")
			return false, nil
		}
	}
	return false, errors.New("no valid answer on standard input; answer Y or n")
}
