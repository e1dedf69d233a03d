package fastdeployreceiver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
)

// Storage layout. In-flight state is one small document (in-flight
// deployments and steps are few); delivery ids go in fixed-size chunks so
// that a request rewrites at most one chunk, not the whole window.
const (
	keyState        = "state"
	keyDedupPrefix  = "dedup/"
	dedupChunkSize  = 512
	persistedFormat = 1
)

// persistedState is the stored document. Its records are the in-flight
// structs themselves (tracker.go: every field exported, with a json tag,
// TestInFlightStructsAreStoredByTag), so a field added there is stored
// with no second edit here.
type persistedState struct {
	Format      int               `json:"format"`
	Deployments []deploymentState `json:"deployments"`
	Steps       []storedStep      `json:"steps"`
	Runs        []storedRun       `json:"runs,omitempty"`
}

// storedStep is a step with the part of its key its state lacks (the
// rest of the key is in the step).
type storedStep struct {
	Deployment string `json:"deployment"`
	stepState
}

func (s *storedStep) key() stepKey {
	return stepKey{deployment: s.Deployment, name: s.Step.Name, position: s.Step.Position}
}

// storedRun is an Ansible run with its key.
type storedRun struct {
	Parent deploytrace.SpanID `json:"parent"`
	ansibleRun
}

// An extent is stored as [start, end].
func (e extent) MarshalJSON() ([]byte, error) { return json.Marshal([]time.Time{e.Start, e.End}) }

func (e *extent) UnmarshalJSON(raw []byte) error {
	var se []time.Time
	if err := json.Unmarshal(raw, &se); err != nil {
		return err
	}
	if len(se) != 2 {
		return fmt.Errorf("extent: want [start, end], got %d times", len(se))
	}
	e.Start, e.End = se[0], se[1]
	return nil
}

type dedupChunk struct {
	Seq uint64   `json:"seq"` // chunk sequence number, orders chunks on load
	IDs []string `json:"ids"`
}

// persister writes the tracker's state through to a storage extension's
// client, so that a restarted collector still completes deployments that
// started before it stopped or crashed.
type persister struct {
	client   storage.Client
	slots    uint64 // dedup chunks kept: the window plus one partial chunk
	chunkSeq uint64
	chunk    []string
	// atRest redacts secrets before anything is written (persist_redact.go).
	atRest *atRest
	// The redacted stored form of each in-flight deployment and step, and
	// its JSON, by the state it was made from: a transaction replaces the
	// states it changes (clone), so a state seen before is unchanged and
	// is neither redacted nor encoded again.
	deploymentRecords map[*deploymentState]cached[deploymentState]
	stepRecords       map[*stepState]cached[storedStep]
}

type cached[R any] struct {
	rec R
	raw []byte
}

func encodeCached[R any](rec R) (cached[R], error) {
	raw, err := json.Marshal(rec)
	return cached[R]{rec: rec, raw: raw}, err
}

func newPersister(client storage.Client, dedupWindow int) (*persister, error) {
	a, err := newAtRest()
	if err != nil {
		return nil, err
	}
	return &persister{client: client, slots: uint64(dedupWindow/dedupChunkSize + 2), atRest: a}, nil
}

func dedupKey(slot uint64) string { return keyDedupPrefix + strconv.FormatUint(slot, 10) }

// load restores the tracker from storage; the caller holds t.mu.
func (p *persister) load(ctx context.Context, t *tracker) error {
	raw, err := p.client.Get(ctx, keyState)
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	if raw != nil {
		var st persistedState
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // context values keep their integers
		if err := dec.Decode(&st); err != nil {
			return fmt.Errorf("decode state: %w", err)
		}
		if st.Format != persistedFormat {
			return fmt.Errorf("decode state: stored format %d, this collector reads format %d", st.Format, persistedFormat)
		}
		for i := range st.Deployments {
			d := &st.Deployments[i]
			if d.Trace.IsEmpty() {
				return fmt.Errorf("decode state: deployment %q has no trace id", d.Info.ID)
			}
			t.deployments[string(d.Info.ID)] = d
		}
		for i := range st.Steps {
			t.steps[st.Steps[i].key()] = &st.Steps[i].stepState
		}
		for _, r := range st.Runs {
			t.runs.Put(r.Parent, r.ansibleRun)
		}
	}
	var chunks []dedupChunk
	for slot := uint64(0); slot < p.slots; slot++ {
		raw, err := p.client.Get(ctx, dedupKey(slot))
		if err != nil {
			return fmt.Errorf("read delivery ids: %w", err)
		}
		if raw == nil {
			continue
		}
		var c dedupChunk
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("decode delivery ids: %w", err)
		}
		chunks = append(chunks, c)
	}
	slices.SortFunc(chunks, func(a, b dedupChunk) int { return int(a.Seq) - int(b.Seq) })
	for _, c := range chunks {
		for _, id := range c.IDs {
			t.delivered.Add(id)
		}
	}
	if n := len(chunks); n > 0 {
		last := chunks[n-1]
		p.chunkSeq = last.Seq
		p.chunk = last.IDs
		if len(p.chunk) >= dedupChunkSize {
			p.chunkSeq++
			p.chunk = nil
		}
	}
	return nil
}

// save writes what a commit changed; the caller holds t.mu.
func (p *persister) save(ctx context.Context, t *tracker, stateChanged bool, ids []string) error {
	var ops []*storage.Operation
	if stateChanged {
		raw, err := p.encode(t)
		if err != nil {
			return fmt.Errorf("encode state: %w", err)
		}
		ops = append(ops, storage.SetOperation(keyState, raw))
	}
	for len(ids) > 0 {
		room := dedupChunkSize - len(p.chunk)
		n := min(room, len(ids))
		for _, id := range ids[:n] {
			p.chunk = append(p.chunk, p.atRest.str(id, false))
		}
		ids = ids[n:]
		raw, err := json.Marshal(dedupChunk{Seq: p.chunkSeq, IDs: p.chunk})
		if err != nil {
			return fmt.Errorf("encode delivery ids: %w", err)
		}
		ops = append(ops, storage.SetOperation(dedupKey(p.chunkSeq%p.slots), raw))
		if len(p.chunk) == dedupChunkSize {
			p.chunkSeq++
			p.chunk = nil
		}
	}
	if len(ops) == 0 {
		return nil
	}
	return p.client.Batch(ctx, ops...)
}

// records are the stored forms of the tracker's state, secrets redacted,
// in their stored order.
func (p *persister) records(t *tracker) ([]cached[deploymentState], []cached[storedStep], []storedRun, error) {
	deployments := make(map[*deploymentState]cached[deploymentState], len(t.deployments))
	ds := make([]cached[deploymentState], 0, len(t.deployments))
	for _, id := range slices.Sorted(maps.Keys(t.deployments)) {
		d := t.deployments[id]
		c, ok := p.deploymentRecords[d]
		if !ok {
			var err error
			if c, err = encodeCached(redacted(p.atRest, *d)); err != nil {
				return nil, nil, nil, err
			}
		}
		deployments[d] = c
		ds = append(ds, c)
	}
	steps := make(map[*stepState]cached[storedStep], len(t.steps))
	ss := make([]cached[storedStep], 0, len(t.steps))
	for k, s := range t.steps {
		c, ok := p.stepRecords[s]
		if !ok {
			var err error
			rec := storedStep{Deployment: p.atRest.str(k.deployment, false), stepState: redacted(p.atRest, *s)}
			if c, err = encodeCached(rec); err != nil {
				return nil, nil, nil, err
			}
		}
		steps[s] = c
		ss = append(ss, c)
	}
	p.deploymentRecords, p.stepRecords = deployments, steps
	slices.SortFunc(ss, func(x, y cached[storedStep]) int {
		a, b := x.rec, y.rec
		if c := strings.Compare(a.Deployment, b.Deployment); c != 0 {
			return c
		}
		if a.Step.Position != b.Step.Position {
			return a.Step.Position - b.Step.Position
		}
		return strings.Compare(a.Step.Name, b.Step.Name)
	})
	var runs []storedRun
	t.runs.All(func(parent deploytrace.SpanID, r ansibleRun) bool {
		if r.PlayID != "" || !r.Start.IsZero() { // else a finished run
			runs = append(runs, storedRun{Parent: parent, ansibleRun: redacted(p.atRest, r)})
		}
		return true
	})
	slices.SortFunc(runs, func(a, b storedRun) int { return bytes.Compare(a.Parent[:], b.Parent[:]) })
	return ds, ss, runs, nil
}

// snapshot is the stored form of the tracker's state as one value.
func (p *persister) snapshot(t *tracker) (persistedState, error) {
	ds, ss, runs, err := p.records(t)
	st := persistedState{Format: persistedFormat, Runs: runs}
	for _, c := range ds {
		st.Deployments = append(st.Deployments, c.rec)
	}
	for _, c := range ss {
		st.Steps = append(st.Steps, c.rec)
	}
	return st, err
}

// encode is json.Marshal(snapshot) (TestPersistEncodeIsTheSnapshot)
// assembled from each record's cached JSON: a request re-encodes only
// what it changed.
func (p *persister) encode(t *tracker) ([]byte, error) {
	ds, ss, runs, err := p.records(t)
	if err != nil {
		return nil, err
	}
	size := 64
	for _, c := range ds {
		size += len(c.raw) + 1
	}
	for _, c := range ss {
		size += len(c.raw) + 1
	}
	var buf bytes.Buffer
	buf.Grow(size)
	buf.WriteString(`{"format":` + strconv.Itoa(persistedFormat) + `,"deployments":`)
	writeList(&buf, ds)
	buf.WriteString(`,"steps":`)
	writeList(&buf, ss)
	if len(runs) > 0 {
		raw, err := json.Marshal(runs)
		if err != nil {
			return nil, err
		}
		buf.WriteString(`,"runs":`)
		buf.Write(raw)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func writeList[R any](buf *bytes.Buffer, list []cached[R]) {
	if len(list) == 0 {
		buf.WriteString("null") // as json.Marshal writes snapshot's nil slice
		return
	}
	buf.WriteByte('[')
	for i, c := range list {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(c.raw)
	}
	buf.WriteByte(']')
}
