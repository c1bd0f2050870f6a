package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// CopyOptions tune [Copy]; the zero value copies every key that is not
// node-local, and refuses to replace anything.
type CopyOptions struct {
	// Overwrite replaces destination values that differ from the source's.
	// Without it, Copy writes nothing when any value differs.
	Overwrite bool
	// DryRun plans and reports, and writes nothing.
	DryRun bool
	// Skip reports whether a key is left out; nil means [SkipInCopy].
	Skip func(key string) bool
	// OnKey, when set, is told what happens to each key (in the order
	// the keys are planned), e.g. to print them; it never sees values.
	OnKey func(key string, a CopyAction)
}

// CopyAction is what Copy does (or, with DryRun, would do) with one key.
type CopyAction int

// The actions of Copy.
const (
	// CopyNew: the destination has no value; it gets the source's.
	CopyNew CopyAction = iota + 1
	// CopyReplace: the destination's value differs and Overwrite is on.
	CopyReplace
	// CopySame: the destination holds the same value already.
	CopySame
	// CopyConflict: the destination's value differs and Overwrite is
	// off; nothing is written.
	CopyConflict
	// CopyRemove: a file of a certificate set being replaced that the
	// source's set does not have (a stale .pem next to a new key).
	CopyRemove
	// CopySkip: a key left out (see CopyOptions.Skip).
	CopySkip
)

// String is the action's word in reports.
func (a CopyAction) String() string {
	switch a {
	case CopyNew:
		return "copy"
	case CopyReplace:
		return "replace"
	case CopySame:
		return "same"
	case CopyConflict:
		return "differs"
	case CopyRemove:
		return "remove"
	case CopySkip:
		return "skip"
	}
	return "?"
}

// CopyReport counts what Copy did (or would do).
type CopyReport struct {
	Copied, Replaced, Unchanged, Removed, Skipped int
	// Certificates and Accounts count the certificate sets and account
	// folders among the keys copied or replaced.
	Certificates, Accounts int
	// Conflicts are the keys whose destination value differs; Copy
	// refused to write anything because of them unless Overwrite was on.
	Conflicts []string
}

// ErrCopyConflict is wrapped by Copy's error when destination values
// differ and Overwrite is off; nothing was written.
var ErrCopyConflict = errors.New("storage: the destination holds different values")

// skippedInCopy are the prefixes SkipInCopy leaves out.
var skippedInCopy = []string{
	"challenges/",    // challenge answers: live for minutes, owned by an order in flight
	"nodes/",         // node status: each node writes its own
	"ondemand/rate/", // on-demand rate counters of the current minute
	"live/",          // certbot-style copies for hooks, written again when needed
}

// SkipInCopy is the default CopyOptions.Skip: it leaves out what belongs
// to a running node or lives for minutes (challenge answers, node status,
// on-demand rate counters), the certbot-style copies under live/ (hooks'
// plaintext copies, written again when needed) and the node's generated
// admin.token. Locks are never listed by a backend, so never copied.
func SkipInCopy(key string) bool {
	if key == "admin.token" {
		return true
	}
	for _, p := range skippedInCopy {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// copySet is keys written together: a certificate set, an account
// folder, one archived lego v4 tree, or a single key.
type copySet struct {
	id       string
	keys     []string // source keys, sorted
	actions  map[string]CopyAction
	stale    []string // destination keys of the set to remove when it is replaced
	replaced bool     // some key of the set is replaced
}

// setOf names the set a key is copied with.
func setOf(key string) string {
	if name := NameOfKey(key); name != "" {
		return certificatesDir + "/" + name
	}
	parts := strings.SplitN(key, "/", 5)
	switch {
	case parts[0] == accountsDir && len(parts) >= 4:
		return strings.Join(parts[:3], "/")
	case parts[0] == archivesDir && len(parts) >= 4 && parts[1] == legacyArchive:
		return strings.Join(parts[:3], "/")
	}
	return key
}

// lastInSet reports whether a key is written after the rest of its set:
// the .json files, whose presence makes a set (or account) visible.
func lastInSet(key string) bool { return strings.HasSuffix(key, extJSON) }

// Copy copies every key of from that Skip does not leave out to to, set by
// set: each certificate set, and each account, is one batch ([Batcher])
// with its .json written last, so a destination interrupted midway holds
// whole sets and the rest of a set that is not visible yet; running Copy
// again finishes the job. Values are compared as the backends return
// them, so over [Wrapper]s that seal values, a value sealed anew still
// counts as the same.
//
// Copy first plans: it reads every value on both sides. When any
// destination value differs and o.Overwrite is off, it returns an error
// wrapping ErrCopyConflict and writes nothing. Replacing (part of) a
// certificate set also removes the destination files of that set the
// source does not have. Copy never shows a value, in errors or to o.OnKey.
//
// The source should not be written while it is copied (stop the zoku
// processes that use it, or copy again after): a set that changes midway
// may be copied half old, half new.
func Copy(ctx context.Context, from, to Backend, o CopyOptions) (CopyReport, error) {
	var rep CopyReport
	if from == to {
		return rep, errors.New("storage: copy of a storage onto itself")
	}
	skip := o.Skip
	if skip == nil {
		skip = SkipInCopy
	}
	keys, err := from.List(ctx, "")
	if err != nil {
		return rep, fmt.Errorf("storage: list %s: %w", from, err)
	}
	destCerts, err := to.List(ctx, certificatesDir)
	if err != nil {
		return rep, fmt.Errorf("storage: list %s: %w", to, err)
	}
	note := func(key string, a CopyAction) {
		if o.OnKey != nil {
			o.OnKey(key, a)
		}
	}

	// Plan.
	var sets []*copySet
	byID := map[string]*copySet{}
	for _, k := range keys {
		if skip(k) {
			rep.Skipped++
			note(k, CopySkip)
			continue
		}
		id := setOf(k)
		s := byID[id]
		if s == nil {
			s = &copySet{id: id, actions: map[string]CopyAction{}}
			byID[id] = s
			sets = append(sets, s)
		}
		s.keys = append(s.keys, k)
	}
	for _, s := range sets {
		changed, replaced := false, false
		for _, k := range s.keys {
			a, err := planKey(ctx, from, to, k, o.Overwrite)
			if err != nil {
				return rep, err
			}
			s.actions[k] = a
			note(k, a)
			switch a {
			case CopyNew:
				rep.Copied++
				changed = true
			case CopyReplace:
				rep.Replaced++
				changed, replaced = true, true
			case CopySame:
				rep.Unchanged++
			case CopyConflict:
				rep.Conflicts = append(rep.Conflicts, k)
			}
		}
		if !changed {
			continue
		}
		if strings.HasPrefix(s.id, certificatesDir+"/") {
			rep.Certificates++
		} else if strings.HasPrefix(s.id, accountsDir+"/") {
			rep.Accounts++
		}
		s.replaced = replaced
		if replaced && strings.HasPrefix(s.id, certificatesDir+"/") {
			// Files of the destination's set that the source's set
			// lacks would not belong to the new key and certificate.
			for _, d := range destCerts {
				if setOf(d) == s.id && !slices.Contains(s.keys, d) && !skip(d) {
					s.stale = append(s.stale, d)
					rep.Removed++
					note(d, CopyRemove)
				}
			}
		}
	}
	if len(rep.Conflicts) > 0 && !o.Overwrite {
		return rep, fmt.Errorf("%w: %d keys differ (%s); nothing was copied", ErrCopyConflict, len(rep.Conflicts), listSome(rep.Conflicts, 3))
	}
	if o.DryRun {
		return rep, nil
	}

	// Apply, set by set.
	for _, s := range sets {
		var ops, last []Op
		for _, k := range s.keys {
			// The .json of a set being replaced is written again even
			// when it is the same: processes that watch storage look
			// at .json writes to notice a new set.
			a := s.actions[k]
			if a != CopyNew && a != CopyReplace && (!s.replaced || !lastInSet(k)) {
				continue
			}
			v, err := from.Load(ctx, k)
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since it was listed
			}
			if err != nil {
				return rep, fmt.Errorf("storage: copy %s: %w", k, err)
			}
			op := Op{Key: k, Value: v}
			if lastInSet(k) {
				last = append(last, op)
			} else {
				ops = append(ops, op)
			}
		}
		for _, k := range s.stale {
			ops = append(ops, Op{Key: k, Delete: true})
		}
		ops = append(ops, last...)
		if len(ops) == 0 {
			continue
		}
		for _, chunk := range chunkOps(ops) {
			if err := storeAll(ctx, to, chunk); err != nil {
				return rep, fmt.Errorf("storage: copy %s to %s: %w", s.id, to, err)
			}
		}
	}
	return rep, nil
}

// Limits of one batch of Copy, below etcd's defaults (128 operations and
// 1.5 MiB per transaction). A certificate set or account is far smaller;
// only a big archived lego v4 tree is split, in order, .json files last.
const (
	maxCopyBatchOps   = 100
	maxCopyBatchBytes = 1 << 20
)

// chunkOps splits ops into batches within the limits, keeping the order.
func chunkOps(ops []Op) [][]Op {
	var (
		out  [][]Op
		cur  []Op
		size int
	)
	for _, op := range ops {
		if len(cur) > 0 && (len(cur) == maxCopyBatchOps || size+len(op.Value) > maxCopyBatchBytes) {
			out, cur, size = append(out, cur), nil, 0
		}
		cur = append(cur, op)
		size += len(op.Value)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// planKey compares one key on both sides.
func planKey(ctx context.Context, from, to Backend, key string, overwrite bool) (CopyAction, error) {
	src, err := from.Load(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("storage: copy: read %s from %s: %w", key, from, err)
	}
	dst, err := to.Load(ctx, key)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return CopyNew, nil
	case err != nil:
		return 0, fmt.Errorf("storage: copy: read %s from %s: %w", key, to, err)
	case bytes.Equal(src, dst):
		return CopySame, nil
	case overwrite:
		return CopyReplace, nil
	}
	return CopyConflict, nil
}

// listSome lists the first n keys, and how many more there are.
func listSome(keys []string, n int) string {
	if len(keys) <= n {
		return strings.Join(keys, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(keys[:n], ", "), len(keys)-n)
}
