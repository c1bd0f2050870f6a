//go:build !linux

package proxy

import "net"

// peekIdle is the Linux check of an idle connection; elsewhere a closed
// connection is found when it is used, and an idempotent request is then
// sent again on a fresh one.
func peekIdle(net.Conn) bool { return true }
