package fastdeployreceiver

import (
	"context"
	"encoding/json"
	"fmt"
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

// TestPersistRoundTripsEveryField writes a tracker holding a deployment, a
// step and an Ansible run with every field set, reads it back into a new
// tracker, and wants the same state: a field the stored form forgets
// fails here.
func TestPersistRoundTripsEveryField(t *testing.T) {
	t.Parallel()
	seed := 0
	var d deploymentState
	fillAll(t, reflect.ValueOf(&d).Elem(), &seed)
	var s stepState
	fillAll(t, reflect.ValueOf(&s).Elem(), &seed)
	var run ansibleRun
	fillAll(t, reflect.ValueOf(&run).Elem(), &seed)
	require.NotNil(t, d.playbook)

	before := newTracker(time.Hour, 16, "test")
	before.deployments[string(d.info.ID)] = &d
	k := stepKey{deployment: string(d.info.ID), name: s.step.Name, position: s.step.Position}
	before.steps[k] = &s
	parent := deploytrace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}
	before.runs.Put(parent, run)

	store := &memStorage{data: map[string][]byte{}}
	var err error
	before.persist, err = newPersister(store, 16)
	require.NoError(t, err)
	require.NoError(t, before.persist.save(context.Background(), before, true, []string{"delivery-1"}))

	after := newTracker(time.Hour, 16, "test")
	require.NoError(t, after.attach(context.Background(), store, 16))
	assert.Equal(t, &d, after.deployments[string(d.info.ID)])
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
	seed := 0
	var d deploymentState
	fillAll(t, reflect.ValueOf(&d).Elem(), &seed)
	var s stepState
	fillAll(t, reflect.ValueOf(&s).Elem(), &seed)
	var run ansibleRun
	fillAll(t, reflect.ValueOf(&run).Elem(), &seed)
	tr := newTracker(time.Hour, 16, "test")
	p, err := newPersister(&memStorage{data: map[string][]byte{}}, 16)
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
	tr.deployments[string(d.info.ID)] = &d
	tr.deployments["second"] = &deploymentState{info: deployevent.Deployment{ID: "second"}}
	k := stepKey{deployment: string(d.info.ID), name: s.step.Name, position: s.step.Position}
	tr.steps[k] = &s
	tr.runs.Put(deploytrace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, run)
	same("filled")
	before, err := p.encode(tr)
	require.NoError(t, err)
	// A transaction replaces what it changes.
	changed := d.clone()
	changed.failedStep = "changed-step"
	tr.deployments[string(d.info.ID)] = changed
	changedStep := s
	changedStep.step.Message = "changed-message"
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
	c.playbook.add(d.playbook.start.Add(-time.Hour), d.playbook.end.Add(time.Hour))
	assert.NotEqual(t, d.playbook, c.playbook, "the playbook extent is not shared")
	c.fdSteps[0].Name = "changed"
	assert.NotEqual(t, d.fdSteps[0].Name, c.fdSteps[0].Name, "the fastdeploy steps are not shared")
}

// TestCloneSharesNoBacking: of every field of a cloned deployment that
// refers to memory (pointer, slice, map), only those of info may be
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
			if a.IsNil() || strings.HasPrefix(path, ".info.") {
				return
			}
			assert.NotEqual(t, a.UnsafePointer(), b.UnsafePointer(), "%s is shared between a deployment and its clone", path)
		}
	}
	check("", reflect.ValueOf(d), reflect.ValueOf(*c))
}
