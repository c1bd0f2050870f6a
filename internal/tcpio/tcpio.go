// Package tcpio gives a TCP connection reads and writes that stay on the
// calling goroutine's processor.
//
// A read or write on a *net.TCPConn tells the Go scheduler it is entering a
// system call, so that the processor can run other goroutines if the call
// blocks. On a non-blocking socket the call never sleeps, but on loopback a
// write also runs the receiver's side of TCP and takes tens of
// microseconds: long enough for the runtime's monitor thread to take the
// processor away, start another thread for it, and wake every 20 µs while
// it keeps doing so. Under an edge router's load that hand-off costs more
// than the calls themselves (docs/BENCHMARKS.md, "Step 7").
//
// Conn makes the short calls (at most MaxDirect bytes) directly, as an
// event loop in C would, and waits for readiness through the runtime's
// network poller as net does, so deadlines, Close and the poller behave as
// they do on the connection it wraps. Longer transfers go through
// *net.TCPConn unchanged.
package tcpio

import "net"

// MaxDirect is the largest read or write made directly: copying this much
// through a socket takes microseconds.
const MaxDirect = 64 << 10

// Wrap returns c with direct short reads and writes (a *Conn) when c is a
// *net.TCPConn on Linux, and c itself otherwise.
func Wrap(c net.Conn) net.Conn { return wrap(c) }
