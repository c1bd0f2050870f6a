// Package builtin links the target types zoku ships: importing it for its
// side effects registers netscaler, haproxy, nginx and exec (each
// registers itself with package deploy/kind from its init). Package cli
// imports it, so the zoku program and its tests know them all; a test of
// one type links only that type.
package builtin

import (
	// Each package registers its kind in init.
	_ "github.com/zoku/zoku/internal/deploy/exec"
	_ "github.com/zoku/zoku/internal/deploy/haproxy"
	_ "github.com/zoku/zoku/internal/deploy/netscaler"
	_ "github.com/zoku/zoku/internal/deploy/nginx"
)
