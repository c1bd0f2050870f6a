package acmeclient

import (
	"context"
	"crypto"
	"errors"

	"github.com/go-acme/lego/v5/acme"
)

// ResolveAccountByKey asks the CA for the account that belongs to the
// client's key (RFC 8555 §7.3.1, onlyReturnExisting) and records it in
// the Account: how a lost account.json is recovered from its key. A key
// the CA does not know is an error; nothing is registered.
func (c *Client) ResolveAccountByKey(ctx context.Context) (*acme.ExtendedAccount, error) {
	reg, err := c.legoClient().Registration.ResolveAccountByKey(ctx)
	if err != nil {
		return nil, c.explain("find the account of this key", err)
	}
	c.account.Registration = reg
	c.log.Info("account found", "account_url", reg.Location)
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	return reg, nil
}

// KeyRollover replaces the registered account's key with newKey at the CA
// (RFC 8555 §7.3.5). On success the Account signs with newKey; the caller
// stores it. On failure the old key stays in use and valid.
func (c *Client) KeyRollover(ctx context.Context, newKey crypto.Signer) error {
	if newKey == nil {
		return errors.New("acme: key rollover: no new key")
	}
	if c.account.Registration == nil {
		return errors.New("acme: key rollover: the account is not registered")
	}
	if err := c.legoClient().Registration.KeyRollover(ctx, newKey); err != nil {
		return c.explain("account key rollover", err)
	}
	c.account.Key = newKey
	c.log.Info("account key replaced", "account_url", c.account.Registration.Location)
	return c.connect(ctx)
}
