package proxy

import (
	"errors"
	"net"
	"syscall"
)

// peekIdle reports whether nc, an idle connection, is still open with
// nothing to read: one non-blocking MSG_PEEK receive, which neither waits
// nor consumes anything.
func peekIdle(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	idle := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: open and quiet. 0 bytes (EOF), data, or any other
		// error: not usable.
		idle = errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && idle
}
