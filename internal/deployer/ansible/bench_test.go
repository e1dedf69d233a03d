package ansible

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkRead measures the deployer's cost per line of callback output
// (terminal lines and failure summary), for the same playbook run
// recorded with each callback.
func BenchmarkRead(b *testing.B) {
	for _, tc := range []struct {
		name     string
		callback Callback
		file     string
	}{
		{"bundled", CallbackBundled, "testdata/site.json_cb.ndjson"},
		{"jsonl", CallbackJSONL, "testdata/site.jsonl"},
	} {
		data, err := os.ReadFile(tc.file)
		require.NoError(b, err)
		lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				r := NewReader(tc.callback)
				for _, l := range lines {
					if _, ok := r.Read(l); !ok {
						b.Fatalf("unread line %s", l)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
		})
	}
}
