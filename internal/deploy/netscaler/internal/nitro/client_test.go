package nitro

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
)

func TestInt(t *testing.T) {
	cases := []struct {
		in   string
		want Int
	}{{`90`, 90}, {`"90"`, 90}, {`""`, 0}, {`null`, 0}}
	for _, tc := range cases {
		var got Int
		if err := json.Unmarshal([]byte(tc.in), &got); err != nil || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestReplyError(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		code   int // 0: success
	}{
		{"done", 200, `{"errorcode":0,"message":"Done","severity":"NONE"}`, 0},
		{"empty body", 201, ``, 0},
		{"warning", 209, `{"errorcode":1234,"message":"w","severity":"WARNING"}`, 0},
		{"exists", 409, `{"errorcode":273,"message":"Resource already exists","severity":"ERROR"}`, 273},
		{"specific", 599, `{"errorcode":3041,"message":"prio","severity":"ERROR"}`, 3041},
		{"string code", 599, `{"errorcode":"1587","severity":"ERROR"}`, 1587},
	}
	for _, tc := range cases {
		e := replyError("op", tc.status, []byte(tc.body))
		switch {
		case tc.code == 0 && e != nil:
			t.Errorf("%s: got %v, want success", tc.name, e)
		case tc.code != 0 && (e == nil || e.Code != tc.code):
			t.Errorf("%s: got %v, want errorcode %d", tc.name, e, tc.code)
		}
	}
	var err error = &Error{Op: "DELETE x", Status: http.StatusNotFound, Code: CodeNoSuchResource}
	if !NotFound(err) || !HasCode(errors.Join(err), CodeNoSuchResource) {
		t.Error("a 258 must count as not found")
	}
}

func TestArgs(t *testing.T) {
	if got := Args("filelocation", "/nsconfig/ssl", "filename", "a.crt"); got != "args=filelocation:%2Fnsconfig%2Fssl,filename:a.crt" {
		t.Errorf("Args = %q", got)
	}
}
