package fastdeployreceiver

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployevent"
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

type persistedState struct {
	Format      int                   `json:"format"`
	Deployments []persistedDeployment `json:"deployments"`
	Steps       []persistedStep       `json:"steps"`
	Runs        []persistedRun        `json:"runs,omitempty"`
}

type persistedDeployment struct {
	Info       deployevent.Deployment `json:"info"`
	Trace      string                 `json:"trace"`
	Parent     string                 `json:"parent,omitempty"`
	Explicit   bool                   `json:"explicit,omitempty"`
	Started    time.Time              `json:"started"`
	StartSeen  bool                   `json:"start_seen,omitempty"`
	LastEvent  time.Time              `json:"last_event"`
	Touched    time.Time              `json:"touched"`
	FailedStep string                 `json:"failed_step,omitempty"`
	FailedAt   time.Time              `json:"failed_at"`
	StepCount  int                    `json:"step_count,omitempty"`
	FdSteps    []fdStep               `json:"fastdeploy_steps,omitempty"`
	Playbook   []time.Time            `json:"playbook,omitempty"`
}

type persistedStep struct {
	Deployment string           `json:"deployment"`
	Step       deployevent.Step `json:"step"`
	Started    time.Time        `json:"started"`
	LastEvent  time.Time        `json:"last_event"`
	Touched    time.Time        `json:"touched"`
}

type persistedRun struct {
	Parent    string    `json:"parent"`
	Start     time.Time `json:"start"`
	PlayID    string    `json:"play_id,omitempty"`
	PlayName  string    `json:"play_name,omitempty"`
	PlayStart time.Time `json:"play_start"`
	PlayFail  bool      `json:"play_fail,omitempty"`
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
	deploymentRecords map[*deploymentState]cached[persistedDeployment]
	stepRecords       map[*stepState]cached[persistedStep]
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
		for i := range st.Deployments {
			d, err := st.Deployments[i].state()
			if err != nil {
				return fmt.Errorf("decode state: %w", err)
			}
			t.deployments[string(d.info.ID)] = d
		}
		for _, ps := range st.Steps {
			k, s := ps.state()
			t.steps[k] = s
		}
		for _, pr := range st.Runs {
			parent, run, err := pr.state()
			if err != nil {
				return fmt.Errorf("decode state: %w", err)
			}
			t.runs.Put(parent, run)
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

func decodeHexID(s string, dst []byte) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(dst) {
		return fmt.Errorf("want %d hex bytes", len(dst))
	}
	copy(dst, b)
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
func (p *persister) records(t *tracker) ([]cached[persistedDeployment], []cached[persistedStep], []persistedRun, error) {
	deployments := make(map[*deploymentState]cached[persistedDeployment], len(t.deployments))
	ds := make([]cached[persistedDeployment], 0, len(t.deployments))
	for _, id := range slices.Sorted(maps.Keys(t.deployments)) {
		d := t.deployments[id]
		c, ok := p.deploymentRecords[d]
		if !ok {
			var err error
			if c, err = encodeCached(redacted(p.atRest, d.record())); err != nil {
				return nil, nil, nil, err
			}
		}
		deployments[d] = c
		ds = append(ds, c)
	}
	steps := make(map[*stepState]cached[persistedStep], len(t.steps))
	ss := make([]cached[persistedStep], 0, len(t.steps))
	for k, s := range t.steps {
		c, ok := p.stepRecords[s]
		if !ok {
			var err error
			if c, err = encodeCached(redacted(p.atRest, s.record(k.deployment))); err != nil {
				return nil, nil, nil, err
			}
		}
		steps[s] = c
		ss = append(ss, c)
	}
	p.deploymentRecords, p.stepRecords = deployments, steps
	slices.SortFunc(ss, func(x, y cached[persistedStep]) int {
		a, b := x.rec, y.rec
		if c := strings.Compare(a.Deployment, b.Deployment); c != 0 {
			return c
		}
		if a.Step.Position != b.Step.Position {
			return a.Step.Position - b.Step.Position
		}
		return strings.Compare(a.Step.Name, b.Step.Name)
	})
	var runs []persistedRun
	t.runs.All(func(parent deploytrace.SpanID, r ansibleRun) bool {
		if r.playID != "" || !r.start.IsZero() { // else a finished run
			runs = append(runs, redacted(p.atRest, r.record(parent)))
		}
		return true
	})
	slices.SortFunc(runs, func(a, b persistedRun) int { return strings.Compare(a.Parent, b.Parent) })
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

// Each in-flight struct and its stored form convert here, in pairs, and
// nowhere else; TestPersistRoundTripsEveryField fills every field of the
// in-flight structs (by reflection, so a field added later is covered)
// and wants them back after a save and a load.

func (d *deploymentState) record() persistedDeployment {
	pd := persistedDeployment{Info: d.info, Trace: d.trace.String(), Explicit: d.explicit, Started: d.started,
		StartSeen: d.startSeen, LastEvent: d.lastEvent, Touched: d.touched, FailedStep: d.failedStep, FailedAt: d.failedAt,
		StepCount: d.stepCount, FdSteps: d.fdSteps}
	if !d.parent.IsEmpty() {
		pd.Parent = d.parent.String()
	}
	if d.playbook != nil {
		pd.Playbook = []time.Time{d.playbook.start, d.playbook.end}
	}
	return pd
}

func (pd *persistedDeployment) state() (*deploymentState, error) {
	d := &deploymentState{info: pd.Info, explicit: pd.Explicit, started: pd.Started, startSeen: pd.StartSeen,
		lastEvent: pd.LastEvent, touched: pd.Touched, failedStep: pd.FailedStep, failedAt: pd.FailedAt,
		stepCount: pd.StepCount, fdSteps: pd.FdSteps}
	if err := decodeHexID(pd.Trace, d.trace[:]); err != nil {
		return nil, fmt.Errorf("deployment trace id: %w", err)
	}
	if pd.Parent != "" {
		if err := decodeHexID(pd.Parent, d.parent[:]); err != nil {
			return nil, fmt.Errorf("deployment parent id: %w", err)
		}
	}
	if len(pd.Playbook) == 2 {
		d.playbook = &extent{start: pd.Playbook[0], end: pd.Playbook[1]}
	}
	return d, nil
}

func (s *stepState) record(deployment string) persistedStep {
	return persistedStep{Deployment: deployment, Step: s.step, Started: s.started, LastEvent: s.lastEvent, Touched: s.touched}
}

func (ps *persistedStep) state() (stepKey, *stepState) {
	k := stepKey{deployment: ps.Deployment, name: ps.Step.Name, position: ps.Step.Position}
	return k, &stepState{step: ps.Step, started: ps.Started, lastEvent: ps.LastEvent, touched: ps.Touched}
}

func (r ansibleRun) record(parent deploytrace.SpanID) persistedRun {
	return persistedRun{Parent: parent.String(), Start: r.start, PlayID: r.playID, PlayName: r.playName, PlayStart: r.playStart, PlayFail: r.playFail}
}

func (pr *persistedRun) state() (deploytrace.SpanID, ansibleRun, error) {
	var parent deploytrace.SpanID
	if err := decodeHexID(pr.Parent, parent[:]); err != nil {
		return parent, ansibleRun{}, fmt.Errorf("ansible run parent: %w", err)
	}
	return parent, ansibleRun{start: pr.Start, playID: pr.PlayID, playName: pr.PlayName, playStart: pr.PlayStart, playFail: pr.PlayFail}, nil
}
