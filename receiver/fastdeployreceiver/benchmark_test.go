package fastdeployreceiver

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/adapter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/entry"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/stanza/operator/parser/jsonparser"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fastjson"
	"go.opentelemetry.io/collector/component/componenttest"
)

// BenchmarkIngestAnsibleRun measures the decode-and-build path over a real
// Ansible run (testdata/ansible-json_cb.ndjson, produced by ansible-playbook)
// beside contrib's way of turning the same JSON lines into telemetry:
// pkg/stanza's json_parser operator and its entry-to-pdata converter, the
// pieces of filelog/webhook-style ingest (contrib's webhookevent receiver is
// not served at our release). Ours builds spans and log records; contrib's
// builds log records with parsed attributes. Same bytes, same run.
func BenchmarkIngestAnsibleRun(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "ansible-json_cb.ndjson"))
	require.NoError(b, err)
	lines := bytes.Count(body, []byte{'\n'})

	b.Run("fastdeploy", func(b *testing.B) {
		tr := newTracker(time.Hour, defaultDedupWindow, "bench")
		target := ansibleTarget{deployment: "42", step: "migrate", service: "web"}
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.ResetTimer()
		var dec ansibleDecoder
		for b.Loop() {
			now := time.Now()
			batch, rerr := dec.decode(body, time.UTC)
			if rerr != nil {
				b.Fatal(rerr)
			}
			in := &ansibleInput{target: target, batch: batch}
			if rerr := in.validate(now); rerr != nil {
				b.Fatal(rerr)
			}
			x := tr.begin(now, in.lockKeys())
			in.track(x)
			x.release()
			_ = x.commit(context.Background())
			if x.out.spanCount != lines {
				b.Fatalf("built %d spans", x.out.spanCount)
			}
		}
		b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "events/s")
	})

	b.Run("contrib_stanza_json_parser", func(b *testing.B) {
		cfg := jsonparser.NewConfig()
		cfg.ParseInts = true
		op, err := cfg.Build(componenttest.NewNopTelemetrySettings())
		require.NoError(b, err)
		parser := op.(*jsonparser.Parser)
		ctx := context.Background()
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			entries := make([]*entry.Entry, 0, lines)
			sc := bufio.NewScanner(bytes.NewReader(body))
			sc.Buffer(make([]byte, 0, 64<<10), 10<<20)
			for sc.Scan() {
				e := entry.New()
				e.Body = sc.Text()
				if err := parser.Process(ctx, e); err != nil {
					b.Fatal(err)
				}
				entries = append(entries, e)
			}
			logs := adapter.ConvertEntries(entries, "bench", "")
			if logs.LogRecordCount() != lines {
				b.Fatalf("built %d records", logs.LogRecordCount())
			}
		}
		b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkIngestLifecycle measures a whole deployment's lifecycle events
// (one request of eight events) through decoding, state and span building.
func BenchmarkIngestLifecycle(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("testdata", "golden", "events.ndjson"))
	require.NoError(b, err)
	tr := newTracker(time.Hour, defaultDedupWindow, "bench")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var p fastjson.Parser
	for b.Loop() {
		now := time.Now()
		in, rerr := decodeLifecycle(body, &p)
		if rerr != nil {
			b.Fatal(rerr)
		}
		if rerr := in.validate(now); rerr != nil {
			b.Fatal(rerr)
		}
		for i := range in.events {
			in.events[i].ID = "" // every iteration is a new delivery
		}
		x := tr.begin(now, in.lockKeys())
		in.track(x)
		x.release()
		_ = x.commit(context.Background())
	}
	b.ReportMetric(float64(8*b.N)/b.Elapsed().Seconds(), "events/s")
}
