package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/zoku/zoku/internal/config"
)

func TestWebSocketEcho(t *testing.T) {
	ws := startBackend(t, "ws", websocket.Handler(func(c *websocket.Conn) {
		for range 100 { // bounded echo, one whole message at a time
			var msg string
			if websocket.Message.Receive(c, &msg) != nil || websocket.Message.Send(c, msg) != nil {
				return
			}
		}
	}).ServeHTTP)
	infos := make(chan RequestInfo, 1)
	svc := newService(t, &config.Service{
		Servers: servers(ws.url()),
		// The upgraded connection must outlive the try timeout's timer.
		TryTimeout: config.Duration(time.Minute),
	}, nil, Options{Observer: func(i RequestInfo) { infos <- i }})
	f := startFront(t, svc)

	wsURL := "ws" + strings.TrimPrefix(f.URL, "http") + "/echo"
	conf, err := websocket.NewConfig(wsURL, "http://app.example/")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	conn, err := conf.DialContext(ctx)
	if err != nil {
		t.Fatalf("dial through the proxy: %v", err)
	}
	if err := conn.SetDeadline(time.Now().Add(testWait)); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"hello", "second message", strings.Repeat("x", 70000)} {
		if err := websocket.Message.Send(conn, msg); err != nil {
			t.Fatalf("send: %v", err)
		}
		var got string
		if err := websocket.Message.Receive(conn, &got); err != nil {
			t.Fatalf("receive: %v", err)
		}
		if got != msg {
			t.Errorf("echo = %.20q (%d bytes), want %.20q (%d bytes)", got, len(got), msg, len(msg))
		}
	}
	conn.Close()
	st := f.nextStats(t)
	if st.Server != ws.url() || st.Attempts != 1 {
		t.Errorf("Stats = %+v, want server %s after 1 attempt", st, ws.url())
	}
	if info := <-infos; info.Status != http.StatusSwitchingProtocols {
		t.Errorf("RequestInfo.Status = %d, want 101", info.Status)
	}
}

func TestServerSentEventsStream(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
	}{
		{"text/event-stream", "text/event-stream; charset=utf-8"},
		{"any type of unknown length", "application/x-ndjson"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			finished := make(chan struct{})
			sse := startBackend(t, "sse", func(w http.ResponseWriter, r *http.Request) {
				defer close(finished)
				w.Header().Set("Content-Type", tt.contentType)
				_, _ = io.WriteString(w, "data: one\n\n")
				_ = http.NewResponseController(w).Flush()
				select { // the second event waits for the client to see the first
				case <-release:
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, "data: two\n\n")
			})
			f := startFront(t, newService(t, &config.Service{Servers: servers(sse.url())}, nil, Options{}))

			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.URL+"/events", nil)
			resp, err := f.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			rd := bufio.NewReader(resp.Body)
			line, err := rd.ReadString('\n')
			if err != nil || line != "data: one\n" {
				t.Fatalf("first event = %q, %v; want %q", line, err, "data: one\n")
			}
			select {
			case <-finished:
				t.Fatal("backend finished before the client saw the first event")
			default:
			}
			close(release)
			rest, err := io.ReadAll(rd)
			if err != nil || string(rest) != "\ndata: two\n\n" {
				t.Errorf("rest = %q, %v; want %q", rest, err, "\ndata: two\n\n")
			}
			f.nextStats(t)
		})
	}
}
