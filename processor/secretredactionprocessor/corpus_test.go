package secretredactionprocessor

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/redactionprocessor"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/secrets"
)

type corpusEntry struct {
	Kind   string `json:"kind"`
	Secret string `json:"secret"`
	Text   string `json:"text"`
}

func readCorpus(t testing.TB, name string) []corpusEntry {
	return readJSONLines[corpusEntry](t, name)
}

// readJSONLines reads a corpus file of one JSON value per line.
func readJSONLines[E any](t testing.TB, name string) []E {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "corpus", name))
	require.NoError(t, err)
	defer f.Close()
	var out []E
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e E
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
		out = append(out, e)
	}
	require.NoError(t, sc.Err())
	return out
}

// contribConfig sets up contrib's redaction processor for the same job: our
// catalogue as blocked_values, our secret key words as blocked_key_patterns.
// Our key=value rules are anchored at a keyword and vetted in code, which a
// plain regex list cannot do, so contrib gets the closest self-contained
// regexes instead.
func contribConfig(rules int) *redactionprocessor.Config {
	cfg := redactionprocessor.NewFactory().CreateDefaultConfig().(*redactionprocessor.Config)
	cfg.AllowAllKeys = true
	cfg.Summary = "silent"
	// Without it contrib reads only string attributes: a map attribute
	// (ansible.result with stdout, stdout_lines, facts) is neither scanned
	// nor masked, which is no job at all on deployment traces. With it,
	// contrib scans such values as their JSON text, as ours scans them.
	cfg.RedactAllTypes = true
	cfg.BlockedKeyPatterns = []string{`(?i)(password|passwd|passphrase|secret|token|api[_.-]?key|private[_.-]?key|access[_.-]?key|authorization|cookie|credential|_pass$|auth$)`}
	for _, r := range catalogue(rules) {
		switch r.Name {
		case "generic_secret":
			cfg.BlockedValues = append(cfg.BlockedValues,
				`(?i)[a-z0-9_.\-]*(?:password|passwd|pwd|_pass|secret|token|api[_.\-]?key|access[_.\-]?key|private[_.\-]?key|auth|credential)[a-z0-9_.\-]*\\?["']?[ \t]*(?:=>|:=|=|:)[ \t]*\\?["']?[^\s"'\\,;&}\]]+`)
		case "cli_secret_flag":
			cfg.BlockedValues = append(cfg.BlockedValues,
				`(?i)--?[a-z0-9_.\-]*(?:password|passwd|pwd|pass|secret|token|api[_.\-]?key|credential)[a-z0-9_.\-]*(?:[ \t]+|=)(?:"[^"\n]*"|'[^'\n]*'|[^\s"'\-][^\s"']*)`)
		case "private_key": // found in code by us; the equivalent regex
			cfg.BlockedValues = append(cfg.BlockedValues,
				`-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)`)
		case "url_credentials": // our pattern starts at "://" and checks the scheme in code
			cfg.BlockedValues = append(cfg.BlockedValues,
				`[A-Za-z][A-Za-z0-9+.\-]{1,30}://[^\s:/?#@"'<>\[\]]*:([^\s/"'<>]+)@[A-Za-z0-9\[_]`)
		default:
			// Rules found in code (tool arguments, name/value pairs, base64
			// decoding) have no regex for contrib; it gets the others.
			if r.Pattern != "" {
				cfg.BlockedValues = append(cfg.BlockedValues, r.Pattern)
			}
		}
	}
	return cfg
}

// catalogue returns the first n built-in rules (all when n <= 0); the
// key=value rules, which come last, are always included.
func catalogue(n int) []secrets.Rule {
	all := secrets.Catalogue()
	if n <= 0 || n >= len(all) {
		return all
	}
	return append(append([]secrets.Rule{}, all[:n-2]...), all[len(all)-2:]...)
}

// ourConfig disables all but the first n catalogue rules, for the scaling runs.
func ourConfig(n int) *Config {
	cfg := &Config{}
	keep := map[string]bool{}
	for _, r := range catalogue(n) {
		keep[r.Name] = true
	}
	for _, r := range secrets.Catalogue() {
		if !keep[r.Name] {
			cfg.DisabledRules = append(cfg.DisabledRules, r.Name)
		}
	}
	return cfg
}

func newLogsPair(t testing.TB) (ours, contrib processor.Logs, oursSink, contribSink *consumertest.LogsSink) {
	oursSink, contribSink = new(consumertest.LogsSink), new(consumertest.LogsSink)
	var err error
	ours, err = NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(NewFactory().Type()), &Config{}, oursSink)
	require.NoError(t, err)
	cf := redactionprocessor.NewFactory()
	contrib, err = cf.CreateLogs(context.Background(), processortest.NewNopSettings(cf.Type()), contribConfig(0), contribSink)
	require.NoError(t, err)
	return ours, contrib, oursSink, contribSink
}

// runText passes one text as a log body and as an attribute, and returns
// both outputs joined.
func runText(t testing.TB, p processor.Logs, sink *consumertest.LogsSink, text string) string {
	sink.Reset()
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr(text)
	lr.Attributes().PutStr("process.command_line", text)
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	out := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	attr, _ := out.Attributes().Get("process.command_line")
	return out.Body().AsString() + "\n" + attr.AsString()
}

// TestCorpusRecallAndFalsePositives is the detection figure of the issue:
// recall on fake secrets in context, false positives on tricky non-secrets,
// ours and contrib's on the same corpus.
func TestCorpusRecallAndFalsePositives(t *testing.T) {
	positives := readCorpus(t, "positives.jsonl")
	negatives := readCorpus(t, "negatives.jsonl")
	require.GreaterOrEqual(t, len(positives), 150)
	require.GreaterOrEqual(t, len(negatives), 150)
	ours, contrib, oursSink, contribSink := newLogsPair(t)

	var oursFound, contribFound, oursFP, contribFP int
	for _, p := range positives {
		if out := runText(t, ours, oursSink, p.Text); !strings.Contains(out, p.Secret) {
			oursFound++
		} else {
			t.Logf("missed %s in: %.60q", p.Kind, p.Text)
		}
		if out := runText(t, contrib, contribSink, p.Text); !strings.Contains(out, p.Secret) {
			contribFound++
		}
	}
	for _, n := range negatives {
		want := n.Text + "\n" + n.Text
		if out := runText(t, ours, oursSink, n.Text); out != want {
			oursFP++
			t.Logf("false positive: %.80q", out)
		}
		if out := runText(t, contrib, contribSink, n.Text); out != want {
			contribFP++
		}
	}
	recall := float64(oursFound) / float64(len(positives))
	fpRate := float64(oursFP) / float64(len(negatives))
	t.Logf("ours:    recall %d/%d = %.1f%%, false positives %d/%d = %.1f%%", oursFound, len(positives), 100*recall, oursFP, len(negatives), 100*fpRate)
	t.Logf("contrib: recall %d/%d = %.1f%%, false positives %d/%d = %.1f%%", contribFound, len(positives),
		100*float64(contribFound)/float64(len(positives)), contribFP, len(negatives), 100*float64(contribFP)/float64(len(negatives)))
	if recall < 0.99 {
		t.Errorf("recall %.1f%% is under 99%%", 100*recall)
	}
	if fpRate > 0.01 {
		t.Errorf("false positive rate %.1f%% is over 1%%", 100*fpRate)
	}
}
