package deploymetricsconnector

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Storage layout. Each cumulative series is one record, written when a
// batch changed it; the index lists the records, rewritten only when a
// series comes or goes; the de-duplication ring is one record per slot.
// A killed collector therefore restarts with every count it acknowledged,
// continues each series under its original start time (no counter reset
// for Prometheus to see) and still recognises the spans it counted.
const (
	keyIndex     = "deploy_metrics/v1/index"
	keySeries    = "deploy_metrics/v1/s/"
	keyDedupMeta = "deploy_metrics/v1/dedup"
	keyDedupSlot = "deploy_metrics/v1/d/"
	overflowKey  = "\x00overflow"
)

// persisted is what the engine writes through: series changed since the
// last save, series removed, and de-duplication slots filled.
type persisted struct {
	client       storage.Client
	dirty        map[*series]*seriesSet
	removed      []string
	indexChanged bool
	dedupSlots   []int
}

type seriesRecord struct {
	Start int64           `json:"start"`
	Value int64           `json:"value,omitempty"`
	Shown bool            `json:"shown,omitempty"`
	Hist  *histogramState `json:"hist,omitempty"`
}

type histogramState struct {
	Count  uint64   `json:"count"`
	Sum    float64  `json:"sum"`
	Min    float64  `json:"min"`
	Max    float64  `json:"max"`
	Counts []uint64 `json:"counts"`
}

// persistedSets are the series sets whose counts are cumulative; the
// active_deployments gauge is rebuilt from the deployments that start
// after a restart.
func (e *engine) persistedSets() []*seriesSet {
	return []*seriesSet{e.deployments, e.stepDurations, e.stepFailures, e.restore, e.leadTime}
}

func storageKey(s *seriesSet, sr *series) string {
	if sr == s.overflow {
		return keySeries + s.name + overflowKey
	}
	return keySeries + s.name + "\x00" + sr.key.a + "\x00" + sr.key.b + "\x00" + sr.key.c
}

// attachStorage restores the engine from client and writes through to it
// from now on.
func (e *engine) attachStorage(ctx context.Context, client storage.Client) error {
	p := &persisted{client: client, dirty: map[*series]*seriesSet{}}
	if err := e.restoreFrom(ctx, client); err != nil {
		return err
	}
	e.persist = p
	for _, s := range e.persistedSets() {
		s.track = func(sr *series, created bool) {
			p.dirty[sr] = s
			if created {
				p.indexChanged = true
			}
		}
		s.untrack = func(sr *series) {
			delete(p.dirty, sr)
			p.removed = append(p.removed, storageKey(s, sr))
			p.indexChanged = true
		}
	}
	if e.rewriteDedup {
		for slot := range e.dedup.Slots() {
			p.dedupSlots = append(p.dedupSlots, slot)
		}
	}
	return nil
}

func (e *engine) restoreFrom(ctx context.Context, client storage.Client) error {
	raw, err := client.Get(ctx, keyIndex)
	if err != nil {
		return fmt.Errorf("read %s: %w", keyIndex, err)
	}
	if raw != nil {
		var keys []string
		if err := json.Unmarshal(raw, &keys); err != nil {
			return fmt.Errorf("decode %s: %w", keyIndex, err)
		}
		sets := map[string]*seriesSet{}
		for _, s := range e.persistedSets() {
			sets[s.name] = s
		}
		for _, k := range keys {
			if err := e.restoreSeries(ctx, client, sets, k); err != nil {
				return err
			}
		}
	}
	return e.restoreDedup(ctx, client)
}

func (e *engine) restoreSeries(ctx context.Context, client storage.Client, sets map[string]*seriesSet, key string) error {
	rest, ok := strings.CutPrefix(key, keySeries)
	if !ok {
		return fmt.Errorf("index names %q, not a series", key)
	}
	name, labels, _ := strings.Cut(rest, "\x00")
	s := sets[name]
	if s == nil {
		return nil // a metric this version no longer has
	}
	raw, err := client.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("read series %s: %w", name, err)
	}
	if raw == nil {
		return nil
	}
	var rec seriesRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return fmt.Errorf("decode series %s: %w", name, err)
	}
	sr := s.newSeries(labelKey{}, pcommon.Timestamp(rec.Start))
	sr.value, sr.shown, sr.updated = rec.Value, rec.Shown, e.now().UnixNano()
	if sr.hist != nil && rec.Hist != nil {
		// Buckets changed in the configuration: the old counts cannot be
		// placed, so the series starts again (a counter reset).
		if len(rec.Hist.Counts) != len(sr.hist.counts) {
			return nil
		}
		h := sr.hist
		h.count, h.sum, h.min, h.max = rec.Hist.Count, rec.Hist.Sum, rec.Hist.Min, rec.Hist.Max
		copy(h.counts, rec.Hist.Counts)
	}
	if "\x00"+labels == overflowKey {
		s.overflow = sr
		return nil
	}
	parts := strings.SplitN(labels, "\x00", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	sr.key = labelKey{parts[0], parts[1], parts[2]}
	s.m[sr.key] = sr
	return nil
}

func (e *engine) restoreDedup(ctx context.Context, client storage.Client) error {
	raw, err := client.Get(ctx, keyDedupMeta)
	if err != nil || raw == nil {
		return err
	}
	if len(raw) != 16 {
		return fmt.Errorf("decode %s: %d bytes", keyDedupMeta, len(raw))
	}
	size, next := int(binary.BigEndian.Uint64(raw[:8])), int(binary.BigEndian.Uint64(raw[8:]))
	if e.cfg.DeduplicationWindow <= 0 || size == 0 {
		return nil
	}
	slots := make([]spanKey, 0, size)
	for slot := range size {
		v, err := client.Get(ctx, keyDedupSlot+strconv.Itoa(slot))
		if err != nil {
			return fmt.Errorf("read de-duplication slot: %w", err)
		}
		if len(v) != len(spanKey{}) {
			return fmt.Errorf("decode de-duplication slot %d: %d bytes", slot, len(v))
		}
		slots = append(slots, spanKey(v))
	}
	// Same layout: slots where they were, the next write where it was.
	if e.dedup.Restore(slots, next) {
		return nil
	}
	// The window shrank (or the record is not a ring this size can hold):
	// keep the latest entries, oldest first, and rewrite every slot with
	// the next save.
	if next > len(slots) {
		next = 0
	}
	ordered := append(slices.Clone(slots[next:]), slots[:next]...)
	if len(ordered) > e.cfg.DeduplicationWindow {
		ordered = ordered[len(ordered)-e.cfg.DeduplicationWindow:]
	}
	for _, k := range ordered {
		e.dedup.Add(k)
	}
	e.rewriteDedup = true
	return nil
}

// save writes what changed since the last save in one batch. On failure
// the changes stay pending and go with the next save.
func (e *engine) save(ctx context.Context) error {
	p := e.persist
	if p == nil || (len(p.dirty) == 0 && len(p.removed) == 0 && !p.indexChanged && len(p.dedupSlots) == 0) {
		return nil
	}
	ops := make([]*storage.Operation, 0, len(p.dirty)+len(p.removed)+len(p.dedupSlots)+2)
	for sr, s := range p.dirty {
		rec := seriesRecord{Start: int64(sr.start), Value: sr.value, Shown: sr.shown}
		if h := sr.hist; h != nil {
			rec.Hist = &histogramState{Count: h.count, Sum: h.sum, Min: h.min, Max: h.max, Counts: h.counts}
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encode series: %w", err)
		}
		ops = append(ops, storage.SetOperation(storageKey(s, sr), b))
	}
	for _, k := range p.removed {
		ops = append(ops, storage.DeleteOperation(k))
	}
	if p.indexChanged {
		var keys []string
		for _, s := range e.persistedSets() {
			for _, sr := range s.m {
				keys = append(keys, storageKey(s, sr))
			}
			if s.overflow != nil {
				keys = append(keys, storageKey(s, s.overflow))
			}
		}
		slices.Sort(keys)
		b, err := json.Marshal(keys)
		if err != nil {
			return fmt.Errorf("encode index: %w", err)
		}
		ops = append(ops, storage.SetOperation(keyIndex, b))
	}
	if len(p.dedupSlots) > 0 {
		d := e.dedup
		for _, slot := range p.dedupSlots {
			k := d.Slot(slot)
			ops = append(ops, storage.SetOperation(keyDedupSlot+strconv.Itoa(slot), slices.Clone(k[:])))
		}
		meta := make([]byte, 16)
		binary.BigEndian.PutUint64(meta[:8], uint64(d.Slots()))
		binary.BigEndian.PutUint64(meta[8:], uint64(d.Next()))
		ops = append(ops, storage.SetOperation(keyDedupMeta, meta))
	}
	if err := p.client.Batch(ctx, ops...); err != nil {
		return fmt.Errorf("persist deployment metrics: %w", err)
	}
	clear(p.dirty)
	p.removed, p.indexChanged, p.dedupSlots = p.removed[:0], false, p.dedupSlots[:0]
	return nil
}
