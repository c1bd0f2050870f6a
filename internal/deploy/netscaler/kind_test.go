package netscaler

import (
	"strings"
	"testing"
)

func TestObjectName(t *testing.T) {
	cases := []struct{ in, want string }{
		{"www.example.net", "www.example.net"},
		{"*.example.net", "_.example.net"},
		{"a-very-long-certificate-name.example.net", "a-very-long-certificat-"},
	}
	for _, tc := range cases {
		got := ObjectName(tc.in)
		if !strings.HasPrefix(got, tc.want) || len(got) > 31 {
			t.Errorf("ObjectName(%q) = %q, want %q... of at most 31 characters", tc.in, got, tc.want)
		}
	}
}
