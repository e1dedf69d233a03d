package secretredactionprocessor

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/secrets"
)

type categoryEntry struct {
	Category string   `json:"category"`
	Polarity string   `json:"polarity"`
	Secrets  []string `json:"secrets"`
	Text     *string  `json:"text"`
	Body     any      `json:"body"`
}

func readCategories(t testing.TB) []categoryEntry {
	return readJSONLines[categoryEntry](t, "categories.jsonl")
}

// redactEntry sends a text as a log body and an attribute, or a structured
// body as it is, through the processor with the default configuration, and
// returns what came out as JSON (structured) or text.
func redactEntry(t testing.TB, e categoryEntry) (in, out string) {
	sink := new(consumertest.LogsSink)
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(NewFactory().Type()), &Config{}, sink)
	require.NoError(t, err)
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	if e.Text != nil {
		lr.Body().SetStr(*e.Text)
		lr.Attributes().PutStr("process.command_line", *e.Text)
		in = *e.Text + "\n" + *e.Text
	} else {
		require.NoError(t, lr.Body().FromRaw(e.Body))
		raw, _ := json.Marshal(lr.Body().AsRaw())
		in = string(raw)
	}
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	got := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if e.Text != nil {
		attr, _ := got.Attributes().Get("process.command_line")
		return in, got.Body().AsString() + "\n" + attr.AsString()
	}
	raw, _ := json.Marshal(got.Body().AsRaw())
	return in, string(raw)
}

// TestCorpusByCategory reports recall and false positives per category of
// leak (and of near miss) and holds the totals to the bar: at least 99%
// recall, at most 1% false positives.
func TestCorpusByCategory(t *testing.T) {
	entries := readCategories(t)
	type score struct{ pos, found, neg, fp int }
	scores := map[string]*score{}
	var total score
	for _, e := range entries {
		sc := scores[e.Category]
		if sc == nil {
			sc = &score{}
			scores[e.Category] = sc
		}
		in, out := redactEntry(t, e)
		if e.Polarity == "positive" {
			sc.pos++
			total.pos++
			leaked := ""
			for _, s := range e.Secrets {
				if strings.Contains(out, s) {
					leaked = s
				}
			}
			if leaked == "" {
				sc.found++
				total.found++
			} else {
				t.Logf("missed [%s] %.40q in: %.140q", e.Category, leaked, out)
			}
			continue
		}
		sc.neg++
		total.neg++
		if out != in {
			sc.fp++
			total.fp++
			t.Logf("false positive [%s]: %.160q", e.Category, out)
		}
	}
	names := make([]string, 0, len(scores))
	for n := range scores {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		sc := scores[n]
		line := "  " + n + ":"
		if sc.pos > 0 {
			line += " recall " + ratio(sc.found, sc.pos)
		}
		if sc.neg > 0 {
			line += " false positives " + ratio(sc.fp, sc.neg)
		}
		t.Log(line)
	}
	t.Logf("total: recall %s, false positives %s", ratio(total.found, total.pos), ratio(total.fp, total.neg))
	require.GreaterOrEqual(t, total.pos, 400)
	require.GreaterOrEqual(t, total.neg, 400)
	// Each category holds too: a category is a kind of text, and a redactor
	// that fails one kind fails every deployment that prints it. Small
	// categories get the slack of one text in twenty.
	for _, n := range names {
		sc := scores[n]
		if sc.pos > 0 && float64(sc.found) < 0.95*float64(sc.pos) {
			t.Errorf("%s: recall %s is under 95%%", n, ratio(sc.found, sc.pos))
		}
		if sc.neg > 0 && float64(sc.fp) > 0.05*float64(sc.neg) {
			t.Errorf("%s: false positives %s are over 5%%", n, ratio(sc.fp, sc.neg))
		}
	}
	if float64(total.found) < 0.99*float64(total.pos) {
		t.Errorf("recall %s is under 99%%", ratio(total.found, total.pos))
	}
	if float64(total.fp) > 0.01*float64(total.neg) {
		t.Errorf("false positives %s are over 1%%", ratio(total.fp, total.neg))
	}
}

func ratio(a, b int) string {
	return strings.TrimSpace(strings.Join([]string{itoa(a), "/", itoa(b), " = ", pct(a, b)}, ""))
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func pct(a, b int) string {
	if b == 0 {
		return "n/a"
	}
	v := float64(a) * 100 / float64(b)
	raw, _ := json.Marshal(float64(int(v*10+0.5)) / 10)
	return string(raw) + "%"
}

// TestEveryRuleHasNearMisses: every catalogue rule meets, among the
// corpus's negatives, texts that pass its cheap gate (hold one of its
// keywords, and its literal) and must still be left alone, so that no rule
// is only ever tried on text it should fire on.
func TestEveryRuleHasNearMisses(t *testing.T) {
	var negatives []string
	for _, e := range readCategories(t) {
		if e.Polarity != "negative" {
			continue
		}
		if e.Text != nil {
			negatives = append(negatives, *e.Text)
			continue
		}
		raw, err := json.Marshal(e.Body)
		require.NoError(t, err)
		negatives = append(negatives, string(raw))
	}
	for _, r := range secrets.Catalogue() {
		near := 0
		for _, text := range negatives {
			lower := strings.ToLower(text)
			if r.Literal != "" && !strings.Contains(text, r.Literal) {
				continue
			}
			for _, kw := range r.Keywords {
				if strings.Contains(lower, strings.ToLower(kw)) {
					near++
					break
				}
			}
		}
		assert.Positive(t, near, "rule %s: no negative in the corpus passes its keyword gate", r.Name)
	}
}
