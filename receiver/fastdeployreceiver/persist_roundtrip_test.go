package fastdeployreceiver

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

// fillAll sets every field of v, nested structs and pointers included, to
// a value that differs from its zero value and from the other fields. A
// field added later is filled too, so the round trip below catches a
// field that storage would drop.
func fillAll(t *testing.T, v reflect.Value, seed *int) {
	t.Helper()
	*seed++
	n := *seed
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 27, 11, 0, n, n*1000, time.UTC)))
			return
		}
		for i := range v.NumField() {
			f := v.Field(i)
			if !f.CanSet() {
				f = reflect.NewAt(f.Type(), f.Addr().UnsafePointer()).Elem()
			}
			fillAll(t, f, seed)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillAll(t, v.Elem(), seed)
	case reflect.String:
		v.SetString(fmt.Sprintf("value-%d", n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(n))
	case reflect.Array:
		for i := range v.Len() {
			v.Index(i).Set(reflect.ValueOf(byte(n + i)).Convert(v.Type().Elem()))
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range v.Len() {
			fillAll(t, v.Index(i), seed)
		}
	case reflect.Map:
		// Context values as the decoder gives them: numbers stay json.Number.
		v.Set(reflect.ValueOf(map[string]any{"release": json.Number(fmt.Sprint(n)), "env": map[string]any{"REGION": "eu"}}))
	default:
		t.Fatalf("fillAll: no value for %s; teach the test this kind", v.Type())
	}
}

// filledRecords are a deployment, a step and an Ansible run with every
// field set (fillAll), each value distinct.
func filledRecords(t *testing.T) (deploymentState, stepState, ansibleRun) {
	t.Helper()
	seed := 0
	var d deploymentState
	fillAll(t, reflect.ValueOf(&d).Elem(), &seed)
	var s stepState
	fillAll(t, reflect.ValueOf(&s).Elem(), &seed)
	var run ansibleRun
	fillAll(t, reflect.ValueOf(&run).Elem(), &seed)
	return d, s, run
}

// TestPersistRoundTripsEveryField writes a tracker holding a deployment, a
// step and an Ansible run with every field set, reads it back into a new
// tracker, and wants the same state: a field the stored form forgets
// fails here.
func TestPersistRoundTripsEveryField(t *testing.T) {
	t.Parallel()
	d, s, run := filledRecords(t)
	require.NotNil(t, d.Playbook)

	before := newTracker(time.Hour, 16, "test")
	before.deployments[string(d.Info.ID)] = &d
	k := stepKey{deployment: string(d.Info.ID), name: s.Step.Name, position: s.Step.Position}
	before.steps[k] = &s
	parent := deploytrace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}
	before.runs.Put(parent, run)

	store := newMemStorage()
	var err error
	before.persist, err = newPersister(store, 16)
	require.NoError(t, err)
	require.NoError(t, before.persist.save(context.Background(), before, true, []string{"delivery-1"}))

	after := newTracker(time.Hour, 16, "test")
	require.NoError(t, after.attach(context.Background(), store, 16))
	assert.Equal(t, &d, after.deployments[string(d.Info.ID)])
	assert.Equal(t, &s, after.steps[k])
	got, ok := after.runs.Get(parent)
	require.True(t, ok)
	assert.Equal(t, run, got)
	assert.True(t, after.delivered.Contains("delivery-1"))

	// Written again, the state is byte for byte what was read.
	first, err := before.persist.encode(before)
	require.NoError(t, err)
	second, err := after.persist.encode(after)
	require.NoError(t, err)
	assert.JSONEq(t, string(first), string(second))
}

// TestPersistEncodeIsTheSnapshot: what save writes, assembled from cached
// JSON per record, is the snapshot encoded as one value, before and
// after a transaction replaced a deployment and a step, and empty.
func TestPersistEncodeIsTheSnapshot(t *testing.T) {
	t.Parallel()
	d, s, run := filledRecords(t)
	tr := newTracker(time.Hour, 16, "test")
	p, err := newPersister(newMemStorage(), 16)
	require.NoError(t, err)
	same := func(what string) {
		t.Helper()
		encoded, err := p.encode(tr)
		require.NoError(t, err)
		st, err := p.snapshot(tr)
		require.NoError(t, err)
		whole, err := json.Marshal(st)
		require.NoError(t, err)
		assert.JSONEq(t, string(whole), string(encoded), what)
	}
	same("empty")
	tr.deployments[string(d.Info.ID)] = &d
	tr.deployments["second"] = &deploymentState{Info: deployevent.Deployment{ID: "second"}}
	k := stepKey{deployment: string(d.Info.ID), name: s.Step.Name, position: s.Step.Position}
	tr.steps[k] = &s
	tr.runs.Put(deploytrace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, run)
	same("filled")
	before, err := p.encode(tr)
	require.NoError(t, err)
	// A transaction replaces what it changes.
	changed := d.clone()
	changed.FailedStep = "changed-step"
	tr.deployments[string(d.Info.ID)] = changed
	changedStep := s
	changedStep.Step.Message = "changed-message"
	tr.steps[k] = &changedStep
	same("after a change")
	after, err := p.encode(tr)
	require.NoError(t, err)
	assert.NotEqual(t, string(before), string(after))
	assert.Contains(t, string(after), "changed-step")
	assert.Contains(t, string(after), "changed-message")
}

// TestCloneSharesNothingATransactionChanges: a transaction changes its
// clone, never the tracker's state, until commit.
func TestCloneSharesNothingATransactionChanges(t *testing.T) {
	t.Parallel()
	seed := 0
	var d deploymentState
	fillAll(t, reflect.ValueOf(&d).Elem(), &seed)
	c := d.clone()
	assert.Equal(t, &d, c)
	c.Playbook.add(d.Playbook.Start.Add(-time.Hour), d.Playbook.End.Add(time.Hour))
	assert.NotEqual(t, d.Playbook, c.Playbook, "the playbook extent is not shared")
	c.FdSteps[0].Name = "changed"
	assert.NotEqual(t, d.FdSteps[0].Name, c.FdSteps[0].Name, "the fastdeploy steps are not shared")
}

// TestCloneSharesNoBacking: of every field of a cloned deployment that
// refers to memory (pointer, slice, map), only those of Info may be
// shared with the original: mergeDeployment replaces them (a new time,
// a context copied on write), never writes through them. A field added
// later that clone forgets to copy fails here.
func TestCloneSharesNoBacking(t *testing.T) {
	t.Parallel()
	seed := 0
	var d deploymentState
	fillAll(t, reflect.ValueOf(&d).Elem(), &seed)
	c := d.clone()
	var check func(path string, a, b reflect.Value)
	check = func(path string, a, b reflect.Value) {
		switch a.Kind() {
		case reflect.Struct:
			for i := range a.NumField() {
				check(path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i))
			}
		case reflect.Pointer, reflect.Slice, reflect.Map:
			if a.IsNil() || strings.HasPrefix(path, ".Info.") {
				return
			}
			assert.NotEqual(t, a.UnsafePointer(), b.UnsafePointer(), "%s is shared between a deployment and its clone", path)
		}
	}
	check("", reflect.ValueOf(d), reflect.ValueOf(*c))
}

// storedFieldFaults lists the fields of typ, and of the structs it holds,
// that the stored form would drop (unexported) or name by their Go name
// (no json tag, so a rename changes the stored format). Types with their
// own JSON form (time.Time, extent, ids) are leaves.
func storedFieldFaults(typ reflect.Type) []string {
	var faults []string
	seen := map[reflect.Type]bool{}
	marshaler := reflect.TypeFor[json.Marshaler]()
	textMarshaler := reflect.TypeFor[encoding.TextMarshaler]()
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || typ.Implements(marshaler) || typ.Implements(textMarshaler) {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			name := path + "." + f.Name
			switch {
			case !f.IsExported():
				faults = append(faults, name+" is unexported")
			case f.Tag.Get("json") == "":
				faults = append(faults, name+" has no json tag")
			}
			walk(name, f.Type)
		}
	}
	walk(typ.Name(), typ)
	return faults
}

// TestInFlightStructsAreStoredByTag: the in-flight structs are the stored
// form, so each field is exported with a json tag; a field without one
// would be lost on restart or change the format by a rename.
func TestInFlightStructsAreStoredByTag(t *testing.T) {
	t.Parallel()
	for _, typ := range []reflect.Type{
		reflect.TypeFor[deploymentState](),
		reflect.TypeFor[stepState](),
		reflect.TypeFor[ansibleRun](),
	} {
		assert.Empty(t, storedFieldFaults(typ), typ.Name())
	}
	// Near misses the check must catch, nested and behind a pointer too.
	type inner struct {
		Tagged   string `json:"tagged"`
		Untagged string
	}
	type nearMiss struct {
		Fine     time.Time `json:"fine"`
		hidden   string
		Bare     int
		Nested   *inner   `json:"nested"`
		Stepped  []fdStep `json:"stepped"`
		Ignored_ string   `json:"-"`
	}
	_ = nearMiss{}.hidden
	assert.Equal(t, []string{
		"nearMiss.hidden is unexported",
		"nearMiss.Bare has no json tag",
		"nearMiss.Nested.Untagged has no json tag",
	}, storedFieldFaults(reflect.TypeFor[nearMiss]()))
}

// filledTracker is the tracker the format fixture was written from: two
// deployments (one with every field set, one with only its trace id, so
// every omitempty field is left out), a step and an Ansible run.
func filledTracker(t *testing.T) *tracker {
	t.Helper()
	d, s, run := filledRecords(t)
	tr := newTracker(time.Hour, 16, "test")
	tr.deployments[string(d.Info.ID)] = &d
	tr.deployments[""] = &deploymentState{Trace: deploytrace.TraceID{9}}
	k := stepKey{deployment: string(d.Info.ID), name: s.Step.Name, position: s.Step.Position}
	tr.steps[k] = &s
	tr.runs.Put(deploytrace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, run)
	return tr
}

// TestPersistReadsFormatOne: state-format1.json was written by the
// receiver before its in-flight structs became the stored form (separate
// persisted* structs, converted by hand). A collector upgraded across
// that change reads it into the same state and writes it back byte for
// byte: the format did not change, so persistedFormat stays 1.
func TestPersistReadsFormatOne(t *testing.T) {
	t.Parallel()
	fixture, err := os.ReadFile(filepath.Join("testdata", "persist", "state-format1.json"))
	require.NoError(t, err)
	fixture = bytes.TrimSpace(fixture)
	want := filledTracker(t)

	got := newTracker(time.Hour, 16, "test")
	require.NoError(t, got.attach(context.Background(), memStorageWith(keyState, fixture), 16))
	assert.Equal(t, want.deployments, got.deployments)
	assert.Equal(t, want.steps, got.steps)
	wantRuns, gotRuns := map[deploytrace.SpanID]ansibleRun{}, map[deploytrace.SpanID]ansibleRun{}
	want.runs.All(func(k deploytrace.SpanID, v ansibleRun) bool { wantRuns[k] = v; return true })
	got.runs.All(func(k deploytrace.SpanID, v ansibleRun) bool { gotRuns[k] = v; return true })
	assert.Equal(t, wantRuns, gotRuns)

	again, err := got.persist.encode(got)
	require.NoError(t, err)
	assert.Equal(t, string(fixture), string(again))
	p, err := newPersister(newMemStorage(), 16)
	require.NoError(t, err)
	fresh, err := p.encode(want)
	require.NoError(t, err)
	assert.Equal(t, string(fixture), string(fresh))
}

// TestPersistRefusesWhatItCannotRead: a stored document of another
// format, or with a broken id or extent, stops the receiver's start with
// an error naming the problem; it is never half loaded.
func TestPersistRefusesWhatItCannotRead(t *testing.T) {
	t.Parallel()
	fixture, err := os.ReadFile(filepath.Join("testdata", "persist", "state-format1.json"))
	require.NoError(t, err)
	doc := string(bytes.TrimSpace(fixture))
	for _, tc := range []struct{ name, from, to, wantErr string }{
		{"a later format", `"format":1`, `"format":2`, "stored format 2, this collector reads format 1"},
		{"no format", `"format":1,`, ``, "stored format 0, this collector reads format 1"},
		{"a short trace id", `"trace":"1112131415161718191a1b1c1d1e1f20"`, `"trace":"1112"`, "trace id: want 32 hex digits, got 4"},
		{"no trace id", `"trace":"09000000000000000000000000000000",`, ``, `deployment "" has no trace id`},
		{"a parent id not hex", `"parent":"1213141516171819"`, `"parent":"12131415161718zz"`, "span id"},
		{"a run parent too long", `"parent":"0102030405060708"`, `"parent":"010203040506070809"`, "span id: want 16 hex digits, got 18"},
		{"a playbook of one time", `"playbook":["2026-11-27T11:00:44.000044Z",`, `"playbook":[`, "want [start, end], got 1 times"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, doc, tc.from, "the fixture changed; update the case")
			broken := strings.Replace(doc, tc.from, tc.to, 1)
			tr := newTracker(time.Hour, 16, "test")
			err := tr.attach(context.Background(), memStorageWith(keyState, []byte(broken)), 16)
			require.ErrorContains(t, err, tc.wantErr)
			assert.Empty(t, tr.deployments)
			assert.Empty(t, tr.steps)
			assert.Nil(t, tr.persist)
		})
	}
}
