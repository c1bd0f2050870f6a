package haproxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// runtime talks to HAProxy's Runtime API (the stats/admin socket) the
// non-interactive way: connect, send one command, read until HAProxy
// closes the connection.
type runtime struct {
	network, addr string
	prefix        string // "@1 " on the master CLI
}

func newRuntime(socket string, master bool) *runtime {
	rt := &runtime{network: "unix", addr: socket}
	if !strings.HasPrefix(socket, "/") {
		rt.network = "tcp"
	}
	if master {
		rt.prefix = "@1 "
	}
	return rt
}

// cmd runs one command. A payload (a PEM) follows the command line after
// " <<" and ends with an empty line; it must itself hold no empty line.
func (rt *runtime) cmd(ctx context.Context, line string, payload []byte) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, rt.network, rt.addr)
	if err != nil {
		return "", fmt.Errorf("cannot reach the admin socket %s: %w; check haproxy.socket and that HAProxy runs with 'stats socket ... level admin'", rt.addr, unwrapOp(err))
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	var b strings.Builder
	b.WriteString(rt.prefix + line)
	if payload != nil {
		b.WriteString(" <<\n")
		b.Write(payload)
		if len(payload) > 0 && payload[len(payload)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	b.WriteByte('\n')
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return "", fmt.Errorf("admin socket %s: send %q: %w", rt.addr, verb(line), err)
	}
	out, err := io.ReadAll(io.LimitReader(conn, 1<<20))
	if err != nil {
		return "", fmt.Errorf("admin socket %s: read the reply to %q: %w", rt.addr, verb(line), err)
	}
	return string(out), nil
}

// verb is the command without its arguments, for messages.
func verb(line string) string {
	f := strings.Fields(line)
	if len(f) > 3 {
		f = f[:3]
	}
	return strings.Join(f, " ")
}

func unwrapOp(err error) error {
	if oe, ok := err.(*net.OpError); ok && oe.Err != nil {
		return oe.Err
	}
	return err
}

// certList is the reply to "show ssl cert": the certificate names, and the
// names with an open transaction (lines starting with '*').
type certList struct {
	names        map[string]bool
	transactions []string
}

func parseCertList(out string) certList {
	l := certList{names: map[string]bool{}}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		switch {
		case s == "" || strings.HasPrefix(s, "#"):
		case strings.HasPrefix(s, "*"):
			l.transactions = append(l.transactions, strings.TrimPrefix(s, "*"))
		default:
			l.names[s] = true
		}
	}
	return l
}

// field returns the value of "Key: value" in a "show ssl cert <name>"
// reply.
func field(out, key string) string {
	for l := range strings.SplitSeq(out, "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// firstLines is a reply shortened for an error message.
func firstLines(out string) string {
	var keep []string
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			keep = append(keep, l)
		}
		if len(keep) == 3 {
			break
		}
	}
	return strings.Join(keep, " / ")
}
