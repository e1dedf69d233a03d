// Package timeshift moves every timestamp in a text by the same whole number
// of seconds, keeping each one's layout (separator, fraction, zone).
//
// Samples and fixtures carry fixed times, which is right for goldens but
// wrong for anything posted to a running collector: its receiver accepts
// events from the last five years up to a day ahead, so a sample written
// today is refused some day. Moving a sample to "now" keeps every interval
// inside it (durations, lead times, the order of events) and makes it valid
// on any date.
package timeshift

import (
	"regexp"
	"time"
)

// stamp matches the date and time of day of an RFC 3339 or ISO 8601 time,
// "T" or space separated, as Ansible, json_cb and our events write them.
// The fraction and the zone that may follow are left as they are: a shift by
// whole seconds does not change them.
var stamp = regexp.MustCompile(`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}`)

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// stamps are the positions of timestamps in text: matches not run together
// with more digits on either side ("12026-...", "...:205").
func stamps(text []byte) [][]int {
	var out [][]int
	for _, loc := range stamp.FindAllIndex(text, -1) {
		if (loc[0] > 0 && isDigit(text[loc[0]-1])) || (loc[1] < len(text) && isDigit(text[loc[1]])) {
			continue
		}
		out = append(out, loc)
	}
	return out
}

const layoutT, layoutSpace = "2006-01-02T15:04:05", "2006-01-02 15:04:05"

// parse reads a match as a wall time; zones are ignored, so times written in
// different zones shift alike and arithmetic never crosses a DST change.
func parse(m []byte) (time.Time, string, bool) {
	layout := layoutT
	if m[10] == ' ' {
		layout = layoutSpace
	}
	t, err := time.Parse(layout, string(m))
	return t, layout, err == nil
}

// Bounds returns the earliest and latest timestamps in text; ok is false
// when it has none.
func Bounds(text []byte) (earliest, latest time.Time, ok bool) {
	for _, loc := range stamps(text) {
		t, _, valid := parse(text[loc[0]:loc[1]])
		if !valid {
			continue
		}
		if !ok || t.Before(earliest) {
			earliest = t
		}
		if !ok || t.After(latest) {
			latest = t
		}
		ok = true
	}
	return earliest, latest, ok
}

// Shift returns text with every timestamp moved by d, truncated to whole
// seconds. Text that only looks like a timestamp (month 13) is left alone.
func Shift(text []byte, d time.Duration) []byte {
	d = d.Truncate(time.Second)
	out := make([]byte, 0, len(text))
	last := 0
	for _, loc := range stamps(text) {
		t, layout, ok := parse(text[loc[0]:loc[1]])
		if !ok {
			continue
		}
		out = append(out, text[last:loc[0]]...)
		out = t.Add(d).AppendFormat(out, layout)
		last = loc[1]
	}
	return append(out, text[last:]...)
}

// ToNow shifts a set of texts by one common offset so that the latest
// timestamp in any of them falls on now (as UTC wall time, whole seconds),
// and returns the shifted texts and the offset. Texts that belong together
// (a deployment's events and its Ansible run) must be shifted in one call so
// that they stay aligned.
func ToNow(now time.Time, texts ...[]byte) ([][]byte, time.Duration) {
	var latest time.Time
	found := false
	for _, text := range texts {
		if _, l, ok := Bounds(text); ok && (!found || l.After(latest)) {
			latest, found = l, true
		}
	}
	out := make([][]byte, len(texts))
	if !found {
		copy(out, texts)
		return out, 0
	}
	d := now.UTC().Truncate(time.Second).Sub(latest).Truncate(time.Second)
	for i, text := range texts {
		out[i] = Shift(text, d)
	}
	return out, d
}
