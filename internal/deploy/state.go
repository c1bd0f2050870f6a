package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"sync"
	"time"

	"github.com/zoku/zoku/internal/deploy/internal/certfile"
	"github.com/zoku/zoku/internal/storage"
)

// stateFile records, per target and certificate, the serial last deployed
// (<storage>/deploy/state.json). Targets that cannot say what they serve
// (exec without verify) rely on it for idempotence.
type stateFile struct {
	store *storage.Store

	mu     sync.Mutex
	loaded bool
	data   stateData
}

type stateData struct {
	Targets map[string]map[string]stateEntry `json:"targets"`
}

type stateEntry struct {
	Serial     string    `json:"serial"`
	DeployedAt time.Time `json:"deployedAt"`
}

// stateKey is the storage key of the deploy state.
const stateKey = "deploy/state.json"

func (f *stateFile) loadLocked() error {
	if f.loaded {
		return nil
	}
	b, err := f.store.Backend().Load(context.Background(), stateKey)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read deploy state: %w", err)
	default:
		if err := json.Unmarshal(b, &f.data); err != nil {
			return fmt.Errorf("deploy state %s is damaged (%w); remove it, the next run deploys again", stateKey, err)
		}
	}
	if f.data.Targets == nil {
		f.data.Targets = map[string]map[string]stateEntry{}
	}
	f.loaded = true
	return nil
}

// served returns the serial last deployed, or nil.
func (f *stateFile) served(target, cert string) (*big.Int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.loadLocked(); err != nil {
		return nil, err
	}
	e, ok := f.data.Targets[target][cert]
	if !ok {
		return nil, nil
	}
	n, _ := certfile.ParseSerial(e.Serial)
	return n, nil
}

// record notes a deploy and writes the file atomically.
func (f *stateFile) record(target, cert string, serial *big.Int, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.loadLocked(); err != nil {
		return err
	}
	m := f.data.Targets[target]
	if m == nil {
		m = map[string]stateEntry{}
		f.data.Targets[target] = m
	}
	m[cert] = stateEntry{Serial: certfile.SerialHex(serial), DeployedAt: at.UTC()}
	b, err := json.MarshalIndent(f.data, "", "  ")
	if err != nil {
		return err
	}
	return f.store.Backend().Store(context.Background(), stateKey, append(b, '\n'))
}
