package secretredactionprocessor

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/fastdeploy/otelcol-fastdeploy/processor/secretredactionprocessor/internal/metadata"
)

// FuzzPlantedSecret plants known fake secrets, space separated, in random
// surrounding text: none may survive, and the processor must not panic.
// Run longer with: go test -fuzz FuzzPlantedSecret .
func FuzzPlantedSecret(f *testing.F) {
	for _, seed := range []string{"", "password=", "TASK [x] ***\n", "-----BEGIN RSA PRIVATE KEY-----", "\\n\"", "é€\x00\xff", "://a:b@"} {
		f.Add(seed, seed)
	}
	// The input class that stalled fuzzing: long runs of letters or invalid
	// UTF-8 around a URL with credentials, and many YAML keywords on a line.
	f.Add(strings.Repeat("A", 4000), strings.Repeat("\xbb", 4000))
	f.Add(strings.Repeat("token: a ", 400), strings.Repeat(`x password="x `, 300))
	plants := []string{
		"ghp_0123456789abcdefghijABCDEFGHIJ012345",
		"AKIAQWERTYUIOPASDFGH",
		"xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
		"postgres://app:Sup3rS3cret@db:5432/app",
	}
	sink := new(consumertest.LogsSink)
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type), &Config{}, sink)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, before, after string) {
		for _, plant := range plants {
			sink.Reset()
			ld := plog.NewLogs()
			lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
			lr.Body().SetStr(before + " " + plant + " " + after)
			if err := p.ConsumeLogs(context.Background(), ld); err != nil {
				t.Fatal(err)
			}
			out := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().Str()
			secret := plant
			if i := strings.Index(plant, "Sup3rS3cret"); i >= 0 {
				secret = "Sup3rS3cret"
			}
			if strings.Contains(out, secret) && !strings.Contains(before+after, secret) {
				t.Fatalf("secret survived in %q", out)
			}
		}
	})
}
