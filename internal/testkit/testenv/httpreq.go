package testenv

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// httpreqMessage is the JSON body lego's httpreq DNS provider POSTs in its
// default (non-RAW) mode.
type httpreqMessage struct {
	FQDN  string `json:"fqdn"`
	Value string `json:"value"`
}

// HTTPReqEndpoint starts an HTTP server on loopback that implements lego's
// httpreq provider protocol — POST /present and POST /cleanup with JSON
// {"fqdn","value"} — backed by DNS(t), and returns its URL (for
// HTTPREQ_ENDPOINT or httpreq.Config.Endpoint). Cleanup removes only the
// given value: apex and wildcard share _acme-challenge.<name>. The server
// closes in t.Cleanup.
func HTTPReqEndpoint(t testing.TB) string {
	t.Helper()
	d := DNS(t)
	mux := http.NewServeMux()
	handle := func(apply func(host, value string)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var msg httpreqMessage
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&msg); err != nil {
				http.Error(w, "testenv: bad httpreq body: "+err.Error(), http.StatusBadRequest)
				return
			}
			if msg.FQDN == "" || msg.Value == "" {
				http.Error(w, "testenv: httpreq body needs fqdn and value (RAW mode is not supported)", http.StatusBadRequest)
				return
			}
			apply(msg.FQDN, msg.Value)
			w.WriteHeader(http.StatusOK)
		}
	}
	mux.Handle("POST /present", handle(d.SetTXT))
	mux.Handle("POST /cleanup", handle(d.RemoveTXT))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}
