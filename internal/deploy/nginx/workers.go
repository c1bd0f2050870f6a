package nginx

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// A reload is asynchronous: the master starts new workers, then tells the
// old ones to stop accepting. Between the two, an old worker still answers
// with the old certificate, so "the new one was served once" proves
// nothing. nginx renames a worker that got the order to "worker process is
// shutting down" right before it closes its listening sockets; once every
// worker from before the reload is gone or renamed, new connections can
// only reach new workers. This needs Linux's /proc and the master's pid;
// without them only the TLS check runs.

// masterPID reads the pid file; 0 when it is unreadable.
func (t *Target) masterPID() int {
	b, err := os.ReadFile(t.opts.PIDFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	return pid
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := procStat(n); ok && ppid == pid {
			out = append(out, n)
		}
	}
	return out
}

// procStat returns a process's parent and state from /proc/<pid>/stat.
func procStat(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command may hold spaces
	f := strings.Fields(s[i+1:])
	if i < 0 || len(f) < 2 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0][0], err == nil
}

// retired reports whether pid has exited (or is a zombie) or is an nginx
// process that got the order to shut down.
func retired(pid int) bool {
	if _, state, ok := procStat(pid); !ok || state == 'Z' {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err != nil || len(b) == 0 || strings.Contains(string(b), "shutting down")
}

// waitRetired waits until every process in pids has retired.
func waitRetired(ctx context.Context, pids []int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	interval := 20 * time.Millisecond
	for {
		left := 0
		for _, p := range pids {
			if !retired(p) {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		tm := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			tm.Stop()
			return fmt.Errorf("%d nginx processes from before the reload still take connections after %s (did the master apply the new configuration? see nginx's error log)", left, timeout)
		case <-tm.C:
		}
		interval = min(interval*2, 500*time.Millisecond)
	}
}
