package tcproute

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/zoku/zoku/internal/config"
)

func TestTableMatch(t *testing.T) {
	cfg := &config.Config{TCPRoutes: map[string]*config.TCPRoute{
		"exact":  {SNI: "db.example.test", TLS: config.TLSPassthrough, Service: "s", EntryPoints: []string{"ep"}},
		"wild":   {SNI: "*.example.test", TLS: config.TLSTerminate, Service: "s", EntryPoints: []string{"ep"}},
		"tlsall": {SNI: "*", TLS: config.TLSPassthrough, Service: "s", EntryPoints: []string{"ep"}},
		"all":    {SNI: "*", Service: "s", EntryPoints: []string{"ep"}},
		"other":  {SNI: "other.example.test", TLS: config.TLSPassthrough, Service: "s", EntryPoints: []string{"elsewhere"}},
	}}
	tab := NewTable(cfg, "ep")
	for _, tc := range []struct {
		tls  bool
		sni  string
		want string
	}{
		{true, "db.example.test", "exact"},
		{true, "x.example.test", "wild"},
		{true, "a.b.example.test", "tlsall"}, // a wildcard covers one label
		{true, "other.test", "tlsall"},
		{true, "", "tlsall"},
		{false, "", "all"},
	} {
		got := ""
		if r := tab.Match(tc.tls, tc.sni); r != nil {
			got = r.Name
		}
		if got != tc.want {
			t.Errorf("Match(%v, %q) = %q, want %q", tc.tls, tc.sni, got, tc.want)
		}
	}
	if NewTable(cfg, "none") != nil {
		t.Error("a table for an entry point without TCP routes, want nil")
	}
	only := NewTable(&config.Config{TCPRoutes: map[string]*config.TCPRoute{"all": cfg.TCPRoutes["all"]}}, "ep")
	if !only.OnlyPlainCatchAll() || tab.OnlyPlainCatchAll() {
		t.Error("OnlyPlainCatchAll is wrong")
	}
	if tab.Match(true, "x.test") == nil || NewTable(&config.Config{TCPRoutes: map[string]*config.TCPRoute{"exact": cfg.TCPRoutes["exact"]}}, "ep").Match(false, "") != nil {
		t.Error("a plain connection matched a TLS-only table")
	}
}

// pipePair returns the two ends of a loopback TCP connection.
func pipePair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c
}

func TestPeek(t *testing.T) {
	t.Run("tls", func(t *testing.T) {
		client, server := pipePair(t)
		go func() {
			tc := tls.Client(client, &tls.Config{ServerName: "DB.Example.Test.", NextProtos: []string{"acme-tls/1"}, InsecureSkipVerify: true})
			_ = tc.Handshake() // fails: nobody answers
		}()
		pc, hello, err := Peek(server, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !hello.TLS || hello.ServerName != "db.example.test" || hello.Info == nil || hello.Info.SupportedProtos[0] != "acme-tls/1" {
			t.Fatalf("hello = %+v", hello)
		}
		// Nothing was consumed: a TLS server reading pc sees the whole
		// ClientHello.
		var got string
		srv := tls.Server(pc, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			got = h.ServerName
			return nil, errors.New("stop")
		}})
		_ = srv.Handshake()
		if got != "DB.Example.Test" { // as the client sent it
			t.Fatalf("replayed ClientHello names %q", got)
		}
	})
	t.Run("plain", func(t *testing.T) {
		client, server := pipePair(t)
		io.WriteString(client, "GET / HTTP/1.1\r\n")
		pc, hello, err := Peek(server, 10*time.Second)
		if err != nil || hello.TLS {
			t.Fatalf("Peek = %+v, %v", hello, err)
		}
		b := make([]byte, 16)
		if _, err := io.ReadFull(pc, b); err != nil || string(b) != "GET / HTTP/1.1\r\n" {
			t.Fatalf("replayed %q, %v", b, err)
		}
	})
	t.Run("half a hello", func(t *testing.T) {
		client, server := pipePair(t)
		client.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}) // a record header and one byte
		if _, _, err := Peek(server, 200*time.Millisecond); err == nil {
			t.Fatal("Peek of a ClientHello that never ends: no error")
		}
	})
	t.Run("not a hello", func(t *testing.T) {
		client, server := pipePair(t)
		client.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x0e, 0, 0, 0, 0}) // a ServerHelloDone
		pc, hello, err := Peek(server, 10*time.Second)
		if err != nil || !hello.TLS || hello.Info != nil || pc == nil {
			t.Fatalf("Peek = %+v, %v; want TLS without a hello, for the TLS server to refuse", hello, err)
		}
	})
}

// TestPeekHostileInput feeds Peek a stream of endless handshake records
// under a memory limit: it stops at its bound, whatever the client sends.
func TestPeekHostileInput(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(256 << 20))
	client, server := pipePair(t)
	go func() {
		rec := append([]byte{0x16, 0x03, 0x01, 0x40, 0x00}, make([]byte, 0x4000)...)
		rec[5] = 0x01 // ClientHello, of a length larger than any record
		rec[6], rec[7], rec[8] = 0xff, 0xff, 0xff
		for range 64 {
			if _, err := client.Write(rec); err != nil {
				return
			}
		}
	}()
	pc, hello, err := Peek(server, 10*time.Second)
	if err == nil && (hello.Info != nil || len(pc.buf) > maxHello) {
		t.Fatalf("Peek of a 16 MiB ClientHello: %d bytes kept, hello %v", len(pc.buf), hello.Info)
	}
}

func TestPipeHalfClose(t *testing.T) {
	c1, proxyIn := pipePair(t)
	proxyOut, s1 := pipePair(t)
	done := make(chan [2]int64, 1)
	go func() {
		in, out := Pipe(proxyIn, proxyOut, []byte("head:"))
		done <- [2]int64{in, out}
	}()
	io.WriteString(c1, "request")
	c1.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(s1) // until the client's half-close arrives
	if string(got) != "head:request" {
		t.Fatalf("server read %q", got)
	}
	// The other direction still works after the client's half-close.
	io.WriteString(s1, "answer")
	s1.Close()
	back, _ := io.ReadAll(c1)
	if string(back) != "answer" {
		t.Fatalf("client read %q", back)
	}
	if n := <-done; n != [2]int64{12, 6} {
		t.Fatalf("bytes = %v, want [12 6]", n)
	}
}

func TestAcceptProxy(t *testing.T) {
	pol := &ProxyPolicy{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Timeout: 5 * time.Second}
	t.Run("v2 from a trusted peer", func(t *testing.T) {
		client, server := pipePair(t)
		src := &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 5000}
		dst := &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}
		proxyproto.HeaderProxyFromAddrs(2, src, dst).WriteTo(client)
		io.WriteString(client, "data")
		c, err := AcceptProxy(server, pol)
		if err != nil {
			t.Fatal(err)
		}
		if c.RemoteAddr().String() != src.String() || c.LocalAddr().String() != dst.String() {
			t.Fatalf("addresses %s -> %s", c.RemoteAddr(), c.LocalAddr())
		}
		b := make([]byte, 4)
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "data" {
			t.Fatalf("data after the header: %q %v", b, err)
		}
	})
	t.Run("untrusted peer", func(t *testing.T) {
		_, server := pipePair(t)
		c, err := AcceptProxy(server, &ProxyPolicy{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
		if err != nil || c != server {
			t.Fatalf("an untrusted peer's connection was touched: %v", err)
		}
	})
	t.Run("trusted peer, garbage", func(t *testing.T) {
		client, server := pipePair(t)
		io.WriteString(client, "GET / HTTP/1.1\r\n\r\n")
		if _, err := AcceptProxy(server, pol); err == nil {
			t.Fatal("no error for a trusted peer without a PROXY header")
		}
	})
}

func TestServiceDialFailover(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			pc := proxyproto.NewConn(c, proxyproto.WithPolicy(proxyproto.REQUIRE))
			if h := pc.ProxyHeader(); h != nil {
				io.WriteString(c, h.SourceAddr.String())
			}
			c.Close()
		}
	}()
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	cfg := &config.TCPService{Servers: []config.TCPServer{{Address: deadAddr, Weight: 1}, {Address: ln.Addr().String(), Weight: 1}},
		Strategy: "round-robin", ProxyProtocol: &config.ProxyProtocolOut{Version: 1},
		PassiveHealth: &config.PassiveHealth{MaxFailures: 1, Window: config.Duration(time.Minute), Cooldown: config.Duration(time.Hour)}}
	svc, err := NewService("s", cfg, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	client := &net.TCPAddr{IP: net.ParseIP("192.0.2.9"), Port: 1234}
	local := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 443}
	for i := range 3 {
		up, err := svc.Dial(context.Background(), client, local)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		b, _ := io.ReadAll(up)
		up.Close()
		if string(b) != "192.0.2.9:1234" || up.Server != ln.Addr().String() {
			t.Fatalf("dial %d reached %s and read %q", i, up.Server, b)
		}
	}
	st := svc.Servers()
	if st[0].Up || !st[1].Up || st[1].Connections != 0 || !strings.Contains(st[0].LastError, "refused") {
		t.Fatalf("status after the dead server refused: %+v", st)
	}
	ln.Close()
	if _, err := svc.Dial(context.Background(), client, local); !errors.Is(err, ErrNoServer) {
		t.Fatalf("dial with every server down: %v, want ErrNoServer", err)
	}
}

// chanHandler sends every log message to a channel.
type chanHandler struct{ ch chan string }

func (h chanHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h chanHandler) Handle(_ context.Context, r slog.Record) error {
	h.ch <- r.Message
	return nil
}
func (h chanHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h chanHandler) WithGroup(string) slog.Handler      { return h }

// TestActiveHealthRuns: Start runs a round at once and then on its
// interval, without being asked; a server that stops accepting goes down
// and one that accepts again comes back.
func TestActiveHealthRuns(t *testing.T) {
	var refuse atomic.Bool
	refuse.Store(true)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if refuse.Load() {
			return nil, errors.New("connection refused")
		}
		c, _ := net.Pipe()
		return c, nil
	}
	logs := make(chan string, 16)
	cfg := &config.TCPService{Servers: []config.TCPServer{{Address: "192.0.2.1:5432", Weight: 1}}, Strategy: "round-robin",
		HealthCheck: &config.TCPHealthCheck{Interval: config.Duration(10 * time.Millisecond), Timeout: config.Duration(time.Second)}}
	svc, err := NewService("db", cfg, nil, Options{Dialer: dial, Logger: slog.New(chanHandler{logs})})
	if err != nil {
		t.Fatal(err)
	}
	svc.Start()
	defer svc.Close()
	if msg := <-logs; msg != "upstream down" {
		t.Fatalf("first log line %q, want upstream down", msg)
	}
	if svc.Servers()[0].Up {
		t.Fatal("server up after a failed check")
	}
	refuse.Store(false)
	if msg := <-logs; msg != "upstream up" {
		t.Fatalf("log line %q, want upstream up", msg)
	}
	if !svc.Servers()[0].Up {
		t.Fatal("server down after a passing check")
	}
}
