package cli

// The deploy target types zoku ships (netscaler, haproxy, nginx, exec):
// each registers itself, and the configuration of `zoku run` and `zoku
// deploy` knows only the types linked into the program.
import _ "github.com/zoku/zoku/internal/deploy/builtin"
