package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/zoku/zoku/internal/config"
	"github.com/zoku/zoku/internal/storage"
	"github.com/zoku/zoku/internal/storage/sealed"
)

const storageUsage = `Work on a storage as a whole: a folder (lego's layout) or an etcd cluster.

  zoku storage copy --from SPEC --to SPEC   copy accounts, certificates, archives and
                                            embedded CA state from one storage to another
  zoku storage ls [--path SPEC] [PREFIX]    list the keys of a storage, and which are encrypted
  zoku storage keygen FILE                  write a new storage encryption key (0600)

SPEC is a folder (./.zoku, file:./.zoku) or etcd://host:2379,host:2379/prefix
(etcds:// for TLS). Run 'zoku storage <command> --help' for its flags.`

func runStorage(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(env.Stdout, "Usage: zoku storage <command> [flags]\n\n"+storageUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "copy", "cp":
		return runStorageCopy(ctx, env, args[1:])
	case "ls", "list":
		return runStorageList(ctx, env, args[1:])
	case "keygen":
		return runStorageKeygen(env, args[1:])
	}
	return fmt.Errorf("unknown storage command %q; use copy, ls or keygen ('zoku storage --help')", args[0])
}

// storageSide is one end of a copy.
type storageSide struct {
	spec, keyRef string
	fromConfig   bool
}

func runStorageCopy(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("storage copy", "", `Copy every key of one storage into another: accounts, certificates, archives,
the embedded CA's state and deploy state. Locks, challenge answers, node status,
on-demand rate counters, live/ (hook copies) and admin.token stay behind.

Each certificate set and account is written as one batch with its .json last,
so an interrupted copy leaves whole sets; run it again to finish. A key that
exists at the destination with a different value stops the copy before anything
is written, unless --overwrite. Running it twice changes nothing the second time.

Encryption: --from-key opens encrypted private keys of the source, --to-key
encrypts them at the destination; without keys, values are copied byte for byte
(encrypted ones stay encrypted). Decrypting (--from-key without --to-key) makes
a folder lego can read again. A key is given as a file (made by 'zoku storage
keygen') or as env:NAME, an environment variable holding it; never on the
command line.

With --config, its storage.etcd settings (TLS, user) apply to an etcd side, and
an omitted --from or --to is the config's certificates.acme.storage, read or
written with its storage.encryption key.

Stop the zoku processes that write the source while it is copied.

Examples:
  zoku storage copy --from ./.zoku --to etcd://10.0.0.1:2379/zoku --dry-run
  zoku storage copy --config zoku.yaml --to ./backup --to-key /etc/zoku/backup.key
  zoku storage copy --from etcds://10.0.0.1:2379/zoku --from-key env:ZOKU_STORAGE_KEY --to ./lego-folder --config zoku.yaml`, env)
	var (
		from, to                storageSide
		cfgPath                 string
		overwrite, dry, verbose bool
	)
	fs.StringVar(&from.spec, "from", "", "source storage: a folder or etcd:// URL (default with --config: the config's storage)")
	fs.StringVar(&to.spec, "to", "", "destination storage: a folder or etcd:// URL (default with --config: the config's storage)")
	fs.StringVar(&from.keyRef, "from-key", "", "storage key that opens the source's encrypted values: a key FILE, or env:NAME")
	fs.StringVar(&to.keyRef, "to-key", "", "storage key that encrypts private keys at the destination: a key FILE, or env:NAME")
	fs.StringVar(&cfgPath, "config", "", "configuration file whose storage section (etcd TLS, user, encryption) applies")
	fs.BoolVar(&overwrite, "overwrite", false, "replace destination values that differ")
	fs.BoolVar(&dry, "dry-run", false, "say what would be copied, write nothing")
	fs.BoolVar(&verbose, "v", false, "list every key and what happens to it")
	if err := parse(fs, args); err != nil {
		return err
	}
	var sc *config.Storage
	if cfgPath != "" {
		cfg, err := config.Load(cfgPath, env.Getenv)
		if err != nil {
			return err
		}
		sc = &cfg.Storage
		for _, side := range []*storageSide{&from, &to} {
			if side.spec == "" {
				side.spec, side.fromConfig = cfg.Certificates.ACME.Storage, true
			}
		}
		if from.fromConfig && to.fromConfig {
			return errors.New("give --from or --to (the other one is the config's storage)")
		}
	}
	if from.spec == "" || to.spec == "" {
		return fmt.Errorf("give --from and --to (or --config and one of them); run '%s --help'", fs.Name())
	}
	if sameStorage(from.spec, to.spec) {
		if config.IsEtcdURL(from.spec) { // the URL may hold a password
			return errors.New("--from and --to name the same etcd storage")
		}
		return fmt.Errorf("--from and --to name the same storage (%s)", from.spec)
	}
	var etcd *config.StorageEtcd
	if sc != nil {
		etcd = sc.Etcd
	}
	open := func(side storageSide, flagName string) (storage.Backend, *sealed.Key, io.Closer, error) {
		var key *sealed.Key
		var err error
		switch {
		case side.keyRef != "":
			if key, err = keyFromRef(side.keyRef, env.Getenv); err != nil {
				return nil, nil, nil, fmt.Errorf("--%s-key: %w", flagName, err)
			}
		case side.fromConfig:
			if key, err = storageKey(sc, nil); err != nil {
				return nil, nil, nil, err
			}
		}
		b, closer, err := openBackend(ctx, side.spec, "--"+flagName, etcd)
		return b, key, closer, err
	}
	fromB, fromKey, fromClose, err := open(from, "from")
	if err != nil {
		return err
	}
	defer fromClose.Close()
	toB, toKey, toClose, err := open(to, "to")
	if err != nil {
		return err
	}
	defer toClose.Close()
	// Without keys on either side values go byte for byte; with a key on
	// either side both sides are read through the wrapper, so a sealed
	// value the source cannot open stops the copy instead of being
	// sealed a second time.
	if fromKey != nil || toKey != nil {
		fromB = sealed.Wrap(fromB, sealed.Options{Key: fromKey})
		toB = sealed.Wrap(toB, sealed.Options{Key: toKey})
	}

	out := env.Stdout
	verb := "copying"
	if dry {
		verb = "dry run: would copy"
	}
	fmt.Fprintf(out, "%s %s → %s%s\n", verb, fromB, toB, encryptionNote(fromKey, toKey))
	opts := storage.CopyOptions{Overwrite: overwrite, DryRun: dry}
	if verbose {
		opts.OnKey = func(k string, a storage.CopyAction) { fmt.Fprintf(out, "  %-7s %s\n", a, k) }
	}
	rep, err := storage.Copy(ctx, fromB, toB, opts)
	if errors.Is(err, storage.ErrCopyConflict) {
		return fmt.Errorf("%w; add --overwrite to replace them (--dry-run -v lists them all)", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(out, copySummary(rep, dry))
	return nil
}

// encryptionNote says what happens to private keys on the way.
func encryptionNote(from, to *sealed.Key) string {
	switch {
	case from != nil && to != nil && from.ID() == to.ID():
		return fmt.Sprintf(" (private keys encrypted with key %s on both sides)", to.ID())
	case from != nil && to != nil:
		return fmt.Sprintf(" (private keys re-encrypted from key %s to key %s)", from.ID(), to.ID())
	case from != nil:
		return fmt.Sprintf(" (private keys decrypted with key %s: the destination holds them unencrypted)", from.ID())
	case to != nil:
		return fmt.Sprintf(" (private keys encrypted with key %s)", to.ID())
	}
	return ""
}

func copySummary(r storage.CopyReport, dry bool) string {
	would := ""
	if dry {
		would = "would have "
	}
	return fmt.Sprintf("%scopied %s (%s, %s), replaced %d, removed %d; %d unchanged, %d left out (challenge answers, node-local state)",
		would, plural(r.Copied, "key"), plural(r.Certificates, "certificate set"), plural(r.Accounts, "account"), r.Replaced, r.Removed, r.Unchanged, r.Skipped)
}

// plural is "1 key", "2 keys".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// keyFromRef reads a storage key from "env:NAME" or a file.
func keyFromRef(ref string, getenv func(string) string) (*sealed.Key, error) {
	if name, ok := strings.CutPrefix(ref, "env:"); ok {
		v := ""
		if getenv != nil {
			v = getenv(name)
		}
		if v == "" {
			return nil, fmt.Errorf("environment variable %s is not set", name)
		}
		k, err := sealed.ParseKey([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return k, nil
	}
	return sealed.LoadKeyFile(ref)
}

// sameStorage reports whether two specs name the same folder, or the same
// etcd endpoints and prefix.
func sameStorage(a, b string) bool {
	norm := func(s string) string {
		if config.IsEtcdURL(s) {
			return strings.TrimSuffix(strings.Replace(s, "etcds://", "etcd://", 1), "/")
		}
		p := strings.TrimPrefix(s, "file:")
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return p
	}
	return norm(a) == norm(b)
}

func runStorageList(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet("storage ls", "[PREFIX]", "List the keys of a storage with their stored size, and for private keys\nwhether they are encrypted (and with which key ID). Values are never shown.\nWith --config, the config's storage and storage.etcd settings are used.", env)
	var path, cfgPath string
	fs.StringVar(&path, "path", ".zoku", "storage: a folder (lego's layout), or etcd://host:2379/prefix")
	fs.StringVar(&cfgPath, "config", "", "configuration file: use its certificates.acme.storage and storage.etcd instead of --path")
	if err := parseWithArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("unexpected argument %q; run '%s --help'", fs.Arg(1), fs.Name())
	}
	var etcd *config.StorageEtcd
	if cfgPath != "" {
		if flagGiven(fs, "path") {
			return errors.New("give --path or --config, not both")
		}
		cfg, err := config.Load(cfgPath, env.Getenv)
		if err != nil {
			return err
		}
		path, etcd = cfg.Certificates.ACME.Storage, cfg.Storage.Etcd
	}
	b, closer, err := openBackend(ctx, path, "--path", etcd)
	if err != nil {
		return err
	}
	defer closer.Close()
	keys, err := b.List(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSIZE\tENCRYPTION")
	for _, k := range keys {
		v, err := b.Load(ctx, k)
		if err != nil {
			return err
		}
		state := ""
		switch id, ok := sealed.KeyIDOf(v); {
		case ok:
			state = "key " + id
		case sealed.IsSealed(v):
			state = "malformed envelope"
		case sealed.IsSecret(k):
			state = "none"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", k, len(v), state)
	}
	return tw.Flush()
}

func runStorageKeygen(env Env, args []string) error {
	fs := newFlagSet("storage keygen", "FILE", "Write a new random storage key (32 bytes, as base64) to FILE, created 0600;\nan existing FILE is never replaced. Name it in the config as\nstorage.encryption.keyFile, or in ZOKU_STORAGE_KEY_FILE. Keep a copy somewhere\nsafe: encrypted private keys cannot be read without it.", env)
	if err := parseWithArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("name the file to write; run '%s --help'", fs.Name())
	}
	path := fs.Arg(0)
	data, err := sealed.GenerateKey()
	if err != nil {
		return err
	}
	k, err := sealed.ParseKey(data)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists; zoku never replaces a key file (a lost key makes encrypted keys unreadable): choose another name", path)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	if cerr := f.Close(); werr == nil && serr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = serr
	}
	if werr != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write %s: %w", path, werr)
	}
	fmt.Fprintf(env.Stdout, "wrote storage key %s to %s (0600); keep a copy somewhere safe\n", k.ID(), path)
	return nil
}

// parseWithArgs is parse for commands that take arguments after their
// flags: -h/--help has shown the usage (the flag package shows it) and
// returns flag.ErrHelp; any other problem is one line.
func parseWithArgs(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return fmt.Errorf("%w; run '%s --help'", err, fs.Name())
	}
	return err
}
