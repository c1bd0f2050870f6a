package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestLogLevel: the config's log.level filters the progress log as its
// documentation says (it once took only "debug" into account).
func TestLogLevel(t *testing.T) {
	for _, tc := range []struct {
		level   string
		verbose bool
		want    string // the records written, by their messages
	}{
		{"", false, "info warn error"},
		{"info", false, "info warn error"},
		{"debug", false, "debug info warn error"},
		{"warn", false, "warn error"},
		{"error", false, "error"},
		{"warn", true, "debug info warn error"},
	} {
		for _, format := range []string{"text", "json"} {
			var buf bytes.Buffer
			logger, err := newLevelLogger(&buf, format, logLevel(tc.level, tc.verbose))
			if err != nil {
				t.Fatal(err)
			}
			logger.Debug("debug")
			logger.Info("info")
			logger.Warn("warn")
			logger.Error("error")
			var got []string
			for _, msg := range []string{"debug", "info", "warn", "error"} {
				if strings.Contains(buf.String(), `"msg":"`+msg+`"`) || strings.Contains(buf.String(), " "+msg+"\n") {
					got = append(got, msg)
				}
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("level %q verbose %v, %s: wrote %q, want %q\n%s", tc.level, tc.verbose, format, g, tc.want, buf.String())
			}
		}
	}
}
