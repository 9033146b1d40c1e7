package app

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/webcaresync/webcaresync/internal/config"
	"github.com/webcaresync/webcaresync/internal/privacy"
	"github.com/webcaresync/webcaresync/internal/store"
)

// Keys is the store and keyring of a webcaresync, opened without Temporal,
// for key maintenance (`webcaresync keys`).
type Keys struct {
	Store   store.Store
	Keyring *privacy.Keyring
	// MasterKeys are the configured master keys, newest (active) first.
	MasterKeys *privacy.MasterKeys
}

// OpenKeys opens the store and the master key file named by cfg
// (secrets.master_key_file). It never generates a master key: a missing
// file is an error, since a new key could unwrap nothing.
func OpenKeys(ctx context.Context, cfg config.Config, log *zap.Logger) (*Keys, error) {
	if cfg.Secrets.MasterKeyFile == "" {
		return nil, fmt.Errorf("no master key file: set WEBCARESYNC_MASTER_KEY_FILE, or pass the --data-dir of a `webcaresync dev`")
	}
	mk, err := privacy.LoadMasterKeys(cfg.Secrets.MasterKeyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load the master keys: %w", err)
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, cfg.DataDir, log.Named("store"))
	if err != nil {
		return nil, fmt.Errorf("cannot open the store: %w", err)
	}
	return &Keys{Store: st, Keyring: privacy.NewKeyring(keyStore{st}, mk, log.Named("keyring")), MasterKeys: mk}, nil
}

// LiveKeysByMaster counts the live (not destroyed) data keys wrapped under
// each configured master key.
func (k *Keys) LiveKeysByMaster(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	for _, id := range k.MasterKeys.IDs() {
		ks, err := k.Store.DataKeysByMaster(ctx, id, 0)
		if err != nil {
			return nil, err
		}
		out[id] = len(ks)
	}
	return out, nil
}

// Close closes the store.
func (k *Keys) Close() error { return k.Store.Close() }
