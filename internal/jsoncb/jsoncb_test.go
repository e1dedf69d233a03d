package jsoncb

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fastjson"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	t0 = `"start":"2026-02-03T10:14:04.530911","end":"2026-02-03T10:14:05+01:00"`
)

func TestDecode(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	var p fastjson.Parser
	r, err := Parse(&p, []byte(`{"misc":{"changed":true,"results":[1,2]},"ignore_errors":true,"error_message":{"msg":"boom"},"item":{"path":"/srv"},"item_index":2,"handler":true,"play":"web","host":"db1",`+t0+`,"state":"failed","name":"migrate","position":7,"retries":3}`), berlin)
	require.NoError(t, err)
	assert.Equal(t, 7, r.Position)
	assert.Equal(t, "migrate", r.Name)
	assert.Equal(t, StateFailure, r.State, "failed is json_cb's other word for failure")
	assert.True(t, r.Start.Equal(time.Date(2026, 2, 3, 10, 14, 4, 530911000, berlin)), "zone-less times are read in loc: %s", r.Start)
	assert.True(t, r.End.Equal(time.Date(2026, 2, 3, 9, 14, 5, 0, time.UTC)), "times with a zone keep it: %s", r.End)
	assert.Equal(t, "db1", r.Host)
	assert.Equal(t, "web", r.Play)
	assert.True(t, r.Handler)
	assert.Equal(t, 2, r.ItemIndex)
	assert.Equal(t, `{"path":"/srv"}`, r.Item)
	assert.Equal(t, `{"msg":"boom"}`, r.ErrorMessage)
	assert.True(t, r.IgnoreErrors)
	require.NotNil(t, r.Misc)
	assert.Equal(t, 2, r.Misc.Len())
	require.NotNil(t, r.Changed)
	assert.True(t, *r.Changed)
	assert.Empty(t, r.Missing)

	v, err := p.Parse(`{"position":1,"retries":3,"name":"x","_event":"y"}`)
	require.NoError(t, err)
	assert.Equal(t, []string{"retries", "_event"}, Unknown(v))
}

func TestDecodeOptionalFields(t *testing.T) {
	var p fastjson.Parser
	r, err := Parse(&p, []byte(`{"position":0,"name":"a","state":"ok",`+t0+`,"item":"ignored without item_index","error_message":"  spaced  ","handler":"yes","misc":{"changed":"yes"}}`), time.UTC)
	require.NoError(t, err)
	assert.Equal(t, StateSuccess, r.State)
	assert.Equal(t, -1, r.ItemIndex)
	assert.Empty(t, r.Item, "an item counts only on a loop item's line")
	assert.Equal(t, "spaced", r.ErrorMessage)
	assert.False(t, r.Handler, "only true is true")
	assert.Nil(t, r.Changed, "changed counts only as a boolean")

	r, err = Parse(&p, []byte(`{"position":0,"name":"a","state":"odd",`+t0+`,"misc":null,"item_index":null}`), time.UTC)
	require.NoError(t, err)
	assert.Equal(t, "odd", r.State, "an unknown state is kept for the reader to refuse")
	assert.False(t, KnownState(r.State))
	assert.Nil(t, r.Misc)
	assert.Equal(t, -1, r.ItemIndex)
	for _, s := range States {
		assert.True(t, KnownState(s), s)
	}
}

func TestDecodeMissing(t *testing.T) {
	full := map[string]string{
		FieldPosition: `"position":1`, FieldName: `"name":"a"`, FieldState: `"state":"success"`,
		FieldStart: `"start":"2026-02-03T10:14:04Z"`, FieldEnd: `"end":"2026-02-03T10:14:05Z"`,
	}
	for i, drop := range Required {
		line := "{"
		for _, f := range Required {
			if f != drop {
				if len(line) > 1 {
					line += ","
				}
				line += full[f]
			}
		}
		line += "}"
		var p fastjson.Parser
		r, err := Parse(&p, []byte(line), time.UTC)
		require.NoError(t, err, line)
		assert.Equal(t, drop, r.Missing, line)
		// Two missing: the first in Fields order is named, whatever the
		// order of the keys.
		if i+1 < len(Required) {
			line2 := "{"
			for _, f := range []string{FieldEnd, FieldStart, FieldState, FieldName, FieldPosition} {
				if f != drop && f != Required[i+1] {
					if len(line2) > 1 {
						line2 += ","
					}
					line2 += full[f]
				}
			}
			line2 += "}"
			r, err = Parse(&p, []byte(line2), time.UTC)
			require.NoError(t, err, line2)
			assert.Equal(t, drop, r.Missing, line2)
		}
	}
	var p fastjson.Parser
	r, err := Parse(&p, []byte(`{"position":1,"name":null,"state":"success","start":"2026-02-03T10:14:04Z","end":"2026-02-03T10:14:05Z"}`), time.UTC)
	require.NoError(t, err)
	assert.Equal(t, FieldName, r.Missing, "null is absent")
}

func TestDecodeRefuses(t *testing.T) {
	const ok = `"position":1,"name":"a","state":"success","start":"2026-02-03T10:14:04Z","end":"2026-02-03T10:14:05Z"`
	for _, tc := range []struct{ line, field, msg string }{
		{`{"position":"1","name":"a","state":"success"}`, FieldPosition, "wrong type: want integer"},
		{`{"position":1.5}`, FieldPosition, "wrong type: want integer"},
		{`{"position":null}`, FieldPosition, "wrong type: want integer"},
		{`{"position":1,"name":1}`, FieldName, "wrong type: want string"},
		{`{"position":1,"state":true}`, FieldState, "wrong type: want string"},
		{`{"position":1,"start":"yesterday"}`, FieldStart, "want an ISO 8601 time such as " + TimeExample},
		{`{"position":1,"end":"2026-02-30T10:00:00"}`, FieldEnd, "want an ISO 8601 time such as " + TimeExample},
		{`{` + ok + `,"host":["h"]}`, FieldHost, "wrong type: want string"},
		{`{` + ok + `,"play":{}}`, FieldPlay, "wrong type: want string"},
		{`{` + ok + `,"item_index":-1}`, FieldItemIndex, "wrong type: want a non-negative integer"},
		{`{` + ok + `,"item_index":"0"}`, FieldItemIndex, "wrong type: want a non-negative integer"},
		{`{` + ok + `,"misc":"text"}`, FieldMisc, "wrong type: want object"},
		{`{` + ok + `,"misc":[]}`, FieldMisc, "wrong type: want object"},
		// Several faults: the first in Fields order is named, whatever
		// the order of the keys.
		{`{"misc":1,"end":"x","name":2,"position":1}`, FieldName, "wrong type: want string"},
		{`{"misc":1,"end":"x","start":"y","position":1}`, FieldStart, "want an ISO 8601 time such as " + TimeExample},
	} {
		var p fastjson.Parser
		v, err := p.Parse(tc.line)
		require.NoError(t, err, tc.line)
		_, ferr := Decode(v, time.UTC)
		require.NotNil(t, ferr, tc.line)
		assert.Equal(t, tc.field, ferr.Field, tc.line)
		assert.Equal(t, tc.msg, ferr.Msg, tc.line)
	}
	var p fastjson.Parser
	_, err := Parse(&p, []byte(`[1]`), time.UTC)
	assert.Error(t, err)
	_, err = Parse(&p, []byte(`{"position":1`), time.UTC)
	assert.Error(t, err)
}

func TestParseTime(t *testing.T) {
	loc := time.FixedZone("X", -7200)
	for in, want := range map[string]time.Time{
		"2026-02-03T10:14:04.530911":       time.Date(2026, 2, 3, 10, 14, 4, 530911000, loc),
		"2026-02-03 10:14:04":              time.Date(2026, 2, 3, 10, 14, 4, 0, loc),
		"2026-02-03T10:14:04Z":             time.Date(2026, 2, 3, 10, 14, 4, 0, time.UTC),
		"2026-02-03T10:14:04.5+05:30":      time.Date(2026, 2, 3, 4, 44, 4, 500000000, time.UTC),
		"2026-02-03T10:14:04.123456-00:00": time.Date(2026, 2, 3, 10, 14, 4, 123456000, time.UTC),
	} {
		got, ok := ParseTime(in, loc)
		require.True(t, ok, in)
		assert.True(t, want.Equal(got), "%s: %s", in, got)
	}
	for _, in := range []string{"", "2026-02-03", "10:14:04", "2026-02-03T10:14", "2026-02-03T10:14:04+0100x", "2026-13-03T10:14:04"} {
		_, ok := ParseTime(in, loc)
		assert.False(t, ok, in)
	}
}
