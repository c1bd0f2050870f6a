package certmgr

import "time"

// SetLoadClock makes m's waits for stored certificates (Options.LoadWait)
// ask after instead of time.After, before its first Manage.
func SetLoadClock(m *Manager, after func(time.Duration) <-chan time.Time) { m.after = after }
