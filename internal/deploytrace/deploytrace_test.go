package deploytrace

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDerivationIsStableAndDistinct(t *testing.T) {
	t.Parallel()
	tr := DeploymentTraceID("42")
	// Pinned: clients in the field depend on these values.
	assert.Equal(t, tr, DeploymentTraceID("42"))
	assert.NotEqual(t, tr, DeploymentTraceID("43"))

	seen := map[SpanID]string{}
	add := func(name string, id SpanID) {
		t.Helper()
		require.False(t, id.IsEmpty(), name)
		prev, dup := seen[id]
		require.False(t, dup, "%s collides with %s", name, prev)
		seen[id] = name
	}
	add("deployment", DeploymentSpanID(tr, "42"))
	add("step a/0", StepSpanID(tr, "42", "a", 0))
	add("step a/1", StepSpanID(tr, "42", "a", 1))
	add("step b/0", StepSpanID(tr, "42", "b", 0))
	add("subprocess a/0", SubprocessSpanID(tr, "42", "a", 0))
	add("playbook", PlaybookStepSpanID(tr, "42"))
	parent := StepSpanID(tr, "42", "a", 0)
	add("task 1", TaskSpanID(tr, parent, 1, ""))
	add("task 1 web1", TaskSpanID(tr, parent, 1, "web1"))
	add("task 1 web2", TaskSpanID(tr, parent, 1, "web2"))
	add("task 2", TaskSpanID(tr, parent, 2, ""))
	// Length prefixes keep concatenation ambiguities apart.
	assert.NotEqual(t, StepSpanID(tr, "4", "2a", 0), StepSpanID(tr, "42", "a", 0))
	// Another trace (from a traceparent) moves every span.
	other := DeploymentTraceID("other")
	assert.NotEqual(t, DeploymentSpanID(tr, "42"), DeploymentSpanID(other, "42"))
}

func TestTraceparent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{name: "valid", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{name: "future version with extra field", in: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"},
		{name: "version 00 with extra field", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", wantErr: true},
		{name: "version ff", in: "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", wantErr: true},
		{name: "upper case", in: "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", wantErr: true},
		{name: "zero trace", in: "00-00000000000000000000000000000000-00f067aa0ba902b7-01", wantErr: true},
		{name: "zero span", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", wantErr: true},
		{name: "short", in: "00-4bf92f3577b34da6-00f067aa0ba902b7-01", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr, sp, err := ParseTraceparent(tt.in)
			if tt.wantErr {
				require.ErrorIs(t, err, ErrTraceparent)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", tr.String())
			assert.Equal(t, "00f067aa0ba902b7", sp.String())
			if tt.in[:2] == "00" {
				assert.Equal(t, tt.in, FormatTraceparent(tr, sp))
			}
		})
	}
}

func FuzzParseTraceparent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("zz")
	f.Fuzz(func(t *testing.T, in string) {
		tr, sp, err := ParseTraceparent(in)
		if err != nil {
			return
		}
		// Whatever parses must round-trip through the canonical form.
		tr2, sp2, err := ParseTraceparent(FormatTraceparent(tr, sp))
		require.NoError(t, err)
		require.Equal(t, tr, tr2)
		require.Equal(t, sp, sp2)
	})
}

func TestIDsAreHexText(t *testing.T) {
	t.Parallel()
	tr := DeploymentTraceID("42")
	sp := DeploymentSpanID(tr, "42")
	rawT, err := tr.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, tr.String(), string(rawT))
	rawS, err := sp.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, sp.String(), string(rawS))
	var gotT TraceID
	require.NoError(t, gotT.UnmarshalText(rawT))
	assert.Equal(t, tr, gotT)
	var gotS SpanID
	require.NoError(t, gotS.UnmarshalText(rawS))
	assert.Equal(t, sp, gotS)

	for _, tc := range []struct{ name, text string }{
		{"empty", ""},
		{"one digit short", tr.String()[:31]},
		{"one byte long", tr.String() + "00"},
		{"not hex", "zz" + tr.String()[2:]},
		{"a span id", sp.String()},
	} {
		var id TraceID
		assert.Error(t, id.UnmarshalText([]byte(tc.text)), "trace id %s", tc.name)
	}
	var id SpanID
	assert.ErrorContains(t, id.UnmarshalText([]byte(tr.String())), "span id: want 16 hex digits, got 32")
	assert.Error(t, id.UnmarshalText([]byte("0123456789abcdeg")), "span id not hex")
}
