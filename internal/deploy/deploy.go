// Package deploy obtains certificates for load balancers that have no ACME
// client of their own (NetScaler, HAProxy, nginx, anything a command can
// drive) and pushes them there: the `targets:` of the config, run once by
// `zoku deploy` (cron) or continuously by `zoku run`.
//
// For each target and each certificate it needs, a run:
//  1. loads the stored certificate and applies the renewal rule
//     (certmgr.Due: ARI window, else one third of the lifetime left);
//  2. asks the target what it serves now (an Inspector, a TLS probe, or
//     the record of the last deploy);
//  3. when due, orders a new certificate with the target's own way of
//     answering HTTP-01 (a NetScaler responder policy, zoku's listener
//     behind the load balancer, a webroot, a hook pair) or DNS-01, after a
//     self-check of the answer;
//  4. when the target does not serve the stored certificate, deploys it;
//     the target verifies what it serves and keeps the old certificate in
//     service when anything fails.
//
// Nothing due and the right certificate served means nothing is changed
// and no CA is contacted. One target runs at a time per process, so two
// targets on one appliance never interleave.
package deploy

import (
	"context"
	"errors"
	"math/big"
	"time"

	"github.com/go-acme/lego/v5/challenge"

	"github.com/zoku/zoku/internal/certmgr"
	"github.com/zoku/zoku/internal/storage"
)

// Target is one load balancer.
type Target interface {
	// Deploy puts b in service and checks that it is served. When it
	// fails, the certificate that was in service before must still be.
	Deploy(ctx context.Context, b *storage.Bundle) error
}

// Inspector is a Target that can say which certificate it serves.
type Inspector interface {
	// Serving returns the serial of the certificate in service for the
	// certificate named name (its storage name), or nil when none is.
	Serving(ctx context.Context, name string) (*big.Int, error)
}

// Responder is a Target that answers HTTP-01 itself.
type Responder interface {
	HTTP01Provider() challenge.Provider
}

// Checker is a Target that can check, without changing anything, that a
// deploy could work (credentials, objects, permissions); --dry-run runs it.
type Checker interface {
	Check(ctx context.Context) error
}

// Releaser is a Target that holds something between calls (a session);
// Release is called at the end of every run of the target.
type Releaser interface {
	Release(ctx context.Context)
}

// ErrUnknownTarget is returned by Deploy for a name not in the config.
var ErrUnknownTarget = errors.New("deploy: no target by that name")

// TargetStatus is what the runner knows of one target (see
// certmgr.NodeTarget, its one definition).
type TargetStatus = certmgr.NodeTarget

// Action is what a run did for one certificate of a target.
type Action string

// Actions.
const (
	UpToDate    Action = "up to date"
	Deployed    Action = "deployed"
	Obtained    Action = "obtained and deployed"
	Renewed     Action = "renewed and deployed"
	WouldObtain Action = "would obtain and deploy"
	WouldRenew  Action = "would renew and deploy"
	WouldDeploy Action = "would deploy"
	Waiting     Action = "waiting for the certificate"
	Failed      Action = "failed"
)

// Result is the outcome for one certificate of one target.
type Result struct {
	Target, Certificate string
	Action              Action
	// Serial is the certificate in service afterwards (hex), if known;
	// for a dry run or a failure, the one in service now.
	Serial string
	// Reason says why a renewal was (or was not) due.
	Reason string
	// RenewAt is when the certificate falls due for renewal (zero when
	// there is none).
	RenewAt time.Time
	// Err is set when Action is Failed.
	Err error
}
