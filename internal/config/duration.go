package config

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns d in Go's duration syntax ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as a duration string ("10s"), so YAML, TOML and
// JSON output all show the unit.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads "10s", "1m30s", "90d" (days) or a whole number of
// seconds ("30"). Negative durations are refused.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// UnmarshalYAML lets github.com/goccy/go-yaml decode a Duration from a
// string or from a YAML integer (seconds); zoku's own loader does not need
// it, but code that decodes config fragments with goccy does.
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var v any
	if err := unmarshal(&v); err != nil {
		return err
	}
	return d.fromAny(v)
}

// UnmarshalTOML lets github.com/pelletier/go-toml/v2 (with
// Decoder.EnableUnmarshalerInterface) decode a Duration from a string or
// from a TOML integer (seconds). Without this, go-toml would store an
// integer as nanoseconds.
func (d *Duration) UnmarshalTOML(raw []byte) error {
	var w struct {
		V any `toml:"v"`
	}
	if err := toml.Unmarshal(append([]byte("v = "), raw...), &w); err != nil {
		return fmt.Errorf("invalid duration %s; write it like \"10s\" or \"2m\"", raw)
	}
	return d.fromAny(w.V)
}

func (d *Duration) fromAny(v any) error {
	switch x := v.(type) {
	case string:
		return d.UnmarshalText([]byte(x))
	case int64:
		return d.UnmarshalText([]byte(strconv.FormatInt(x, 10)))
	case uint64:
		return d.UnmarshalText([]byte(strconv.FormatUint(x, 10)))
	case int:
		return d.UnmarshalText([]byte(strconv.Itoa(x)))
	case nil:
		*d = 0
		return nil
	}
	return fmt.Errorf("invalid duration of type %T; write it like \"10s\" or \"2m\"", v)
}

// parseDuration is the one place durations are read: Go syntax, a "d"
// suffix for days, or a bare integer meaning seconds.
func parseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("invalid duration %q; write it like \"10s\", \"2m\", \"1h30m\" or \"90d\"", s)
	if s == "" {
		return 0, bad
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("negative duration %q; durations must be zero or more", s)
		}
		if n > int64(time.Duration(1<<63-1)/time.Second) {
			return 0, bad
		}
		return Duration(time.Duration(n) * time.Second), nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > 100*365 {
			return 0, bad
		}
		return Duration(time.Duration(n) * 24 * time.Hour), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, bad
	}
	if v < 0 {
		return 0, fmt.Errorf("negative duration %q; durations must be zero or more", s)
	}
	return Duration(v), nil
}

// redacted is what every Secret shows instead of its value.
const redacted = "REDACTED"

// String hides the value, so a Secret printed with %v or %s (alone or
// inside a struct) shows "REDACTED". Use string(s) to get the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString hides the value from %#v too.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue hides the value from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
