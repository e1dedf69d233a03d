package timeshift

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShift(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		by   time.Duration
		want string
	}{
		{name: "RFC 3339 UTC", in: `"2026-11-27T11:00:20Z"`, by: time.Hour, want: `"2026-11-27T12:00:20Z"`},
		{name: "fraction kept", in: `"2026-11-27T11:00:20.5Z"`, by: 2 * time.Second, want: `"2026-11-27T11:00:22.5Z"`},
		{name: "offset kept", in: `2026-11-27T23:59:59.123456+01:00`, by: time.Second, want: `2026-11-28T00:00:00.123456+01:00`},
		{name: "json_cb local time", in: `"start":"2026-11-27T11:00:29.366474"`, by: 400 * 24 * time.Hour, want: `"start":"2028-01-01T11:00:29.366474"`},
		{name: "space separated (Ansible's command start)", in: `"end": "2026-11-27 11:00:29.585869"`, by: -24 * time.Hour, want: `"end": "2026-11-26 11:00:29.585869"`},
		{name: "leap day", in: `2028-02-28T12:00:00Z`, by: 24 * time.Hour, want: `2028-02-29T12:00:00Z`},
		{name: "sub-second shift truncated", in: `2026-01-01T00:00:00Z`, by: 1500 * time.Millisecond, want: `2026-01-01T00:00:01Z`},
		// Near misses: left byte for byte.
		{name: "not a month", in: `2026-13-01T00:00:00Z`, by: time.Hour, want: `2026-13-01T00:00:00Z`},
		{name: "date only", in: `released 2026-11-27, build 7`, by: 48 * time.Hour, want: `released 2026-11-27, build 7`},
		{name: "time only", in: `at 11:00:20`, by: time.Hour, want: `at 11:00:20`},
		{name: "inside a longer number", in: `12026-11-27T11:00:20`, by: time.Hour, want: `12026-11-27T11:00:20`},
		{name: "version-like", in: `v2026.11.27-11.00.20`, by: time.Hour, want: `v2026.11.27-11.00.20`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, string(Shift([]byte(tt.in), tt.by)))
		})
	}
}

func TestToNowAlignsTexts(t *testing.T) {
	t.Parallel()
	events := []byte(`{"time":"2026-11-27T11:00:20Z"}` + "\n" + `{"time":"2026-11-27T11:00:32.5Z"}`)
	run := []byte(`{"start":"2026-11-27T11:00:29.366474","end":"2026-11-27T11:00:40.000001"}`)
	now := time.Date(2031, 6, 1, 8, 30, 15, 987654321, time.FixedZone("CEST", 2*3600))
	out, d := ToNow(now, events, run)
	require.Len(t, out, 2)
	// The latest timestamp (the run's end) lands on now's wall time in UTC.
	assert.Contains(t, string(out[1]), `"end":"2031-06-01T06:30:15.000001"`)
	assert.Contains(t, string(out[0]), `"time":"2031-06-01T06:29:55Z"`, "the 20 s between the first event and the run's end are kept")
	_, latest, ok := Bounds(out[1])
	require.True(t, ok)
	assert.Equal(t, time.Date(2031, 6, 1, 6, 30, 15, 0, time.UTC), latest)
	assert.Equal(t, d, Shift0(t, events, out[0]))
}

// Shift0 is the offset between a text and its shifted copy, read from their
// earliest timestamps.
func Shift0(t *testing.T, before, after []byte) time.Duration {
	t.Helper()
	b, _, ok1 := Bounds(before)
	a, _, ok2 := Bounds(after)
	require.True(t, ok1 && ok2)
	return a.Sub(b)
}

func TestToNowWithoutTimestamps(t *testing.T) {
	t.Parallel()
	out, d := ToNow(time.Now(), []byte(`{"no":"times"}`))
	assert.Equal(t, time.Duration(0), d)
	assert.Equal(t, `{"no":"times"}`, string(out[0]))
}
