package tcproute

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// recordTypeHandshake is the first byte of every TLS connection: the
// record that carries the ClientHello (RFC 8446, section 5.1).
const recordTypeHandshake = 0x16

// maxHello bounds the bytes read to find the end of a ClientHello. A
// ClientHello is at most 64 KiB of handshake message (crypto/tls refuses
// larger ones) in records of up to 16 KiB plus headers.
const maxHello = 70 << 10

// errHelloRead stops the sniffing handshake once the ClientHello is read.
var errHelloRead = errors.New("tcproute: client hello read")

// Hello is what Peek learnt of a connection.
type Hello struct {
	// TLS reports whether the connection starts with a TLS handshake
	// record.
	TLS bool
	// Info is the parsed ClientHello (nil when not TLS, or when the
	// handshake record does not parse as one).
	Info *tls.ClientHelloInfo
	// ServerName is Info.ServerName in lower case, without a trailing
	// dot; "" when there is none.
	ServerName string
}

// Conn is a connection whose first bytes were read ahead by Peek: reads
// return those bytes before any others, so the connection can be handed
// on as if nothing had been read.
type Conn struct {
	net.Conn
	buf []byte
}

// Read returns the bytes read ahead first.
func (c *Conn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// Buffered returns the bytes read ahead and not yet returned by Read, and
// forgets them: the caller writes them on before reading the rest from
// Raw (which lets io.Copy splice socket to socket).
func (c *Conn) Buffered() []byte {
	b := c.buf
	c.buf = nil
	return b
}

// Raw is the connection under the bytes read ahead.
func (c *Conn) Raw() net.Conn { return c.Conn }

// Peek reads from c until it knows whether the connection is TLS and, if
// so, has the whole ClientHello, without consuming anything: the returned
// Conn replays every byte read. The read deadline (now+timeout, when
// timeout > 0) is cleared again before Peek returns. An error means the
// client sent nothing usable in time; the caller closes c.
func Peek(c net.Conn, timeout time.Duration) (*Conn, Hello, error) {
	if timeout > 0 {
		if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return nil, Hello{}, fmt.Errorf("tcproute: peek: %w", err)
		}
		defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	}
	rec := &recorder{r: c, max: maxHello}
	var first [1]byte
	if _, err := io.ReadFull(rec, first[:]); err != nil {
		return nil, Hello{}, fmt.Errorf("tcproute: peek: %w", err)
	}
	if first[0] != recordTypeHandshake {
		return &Conn{Conn: c, buf: rec.buf}, Hello{}, nil
	}
	var info *tls.ClientHelloInfo
	srv := tls.Server(sniffConn{Conn: c, r: io.MultiReader(bytes.NewReader(first[:]), rec)}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			info = h
			return nil, errHelloRead
		},
	})
	err := srv.Handshake()
	if info == nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, Hello{}, fmt.Errorf("tcproute: peek: no complete ClientHello: %w", err)
		}
		// Not a ClientHello crypto/tls can read: the TLS server it goes
		// to will say so to the client.
		return &Conn{Conn: c, buf: rec.buf}, Hello{TLS: true}, nil
	}
	name := strings.TrimSuffix(strings.ToLower(info.ServerName), ".")
	return &Conn{Conn: c, buf: rec.buf}, Hello{TLS: true, Info: info, ServerName: name}, nil
}

// recorder reads from r and keeps every byte read, up to max.
type recorder struct {
	r   io.Reader
	buf []byte
	max int
}

func (r *recorder) Read(p []byte) (int, error) {
	if len(r.buf) >= r.max {
		return 0, errors.New("tcproute: ClientHello too large")
	}
	if room := r.max - len(r.buf); len(p) > room {
		p = p[:room]
	}
	n, err := r.r.Read(p)
	r.buf = append(r.buf, p[:n]...)
	return n, err
}

// sniffConn feeds a throw-away TLS server: reads come from r (the bytes
// recorded), writes (the alert it sends when stopped) go nowhere.
type sniffConn struct {
	net.Conn
	r io.Reader
}

func (s sniffConn) Read(p []byte) (int, error)  { return s.r.Read(p) }
func (s sniffConn) Write(p []byte) (int, error) { return len(p), nil }
func (s sniffConn) Close() error                { return nil }
