package http1

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/zoku/zoku/internal/tcpio"
)

// TestConnectionsAreDirect: the loop reads and writes its connections,
// plain and under TLS, through tcpio (short calls without the scheduler's
// system-call hand-off).
func TestConnectionsAreDirect(t *testing.T) {
	serverConf, clientConf := tlsConfigs(t)
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plain", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			inHandler := make(chan struct{})
			release := make(chan struct{})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(inHandler)
				<-release
				_, _ = io.WriteString(w, "ok")
			})
			var conf *tls.Config
			if tc.tls {
				conf = serverConf
			}
			_, addr, loop := pair(t, h, conf)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tc.tls {
				c = tls.Client(c, clientConf)
			}
			go func() { _, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n") }()
			<-inHandler
			loop.mu.Lock()
			var types []string
			for sc := range loop.conns {
				var nc net.Conn = sc.rwc
				if tc, ok := nc.(*tls.Conn); ok {
					nc = tc.NetConn()
				}
				if _, ok := nc.(*tcpio.Conn); !ok {
					types = append(types, fmt.Sprintf("%T", nc))
				}
			}
			n := len(loop.conns)
			loop.mu.Unlock()
			close(release)
			if n != 1 || len(types) > 0 {
				t.Fatalf("%d connections; not through tcpio: %v", n, types)
			}
		})
	}
}
