//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/collectorproc"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/testutil/otlpsink"
)

// Collector config fragments the e2e tests share. Each test's config
// spells out what differs (receiver settings, processors, pipelines) and
// fills the {{fields}} with fillConfig.

// storageHead: a health check on {{health}}, file_storage in {{dir}} and
// the fastdeploy receiver on {{receiver}}; the receiver's settings follow.
const storageHead = `
extensions:
  health_check:
    endpoint: 127.0.0.1:{{health}}
  file_storage:
    directory: {{dir}}
receivers:
  fastdeploy:
    endpoint: 127.0.0.1:{{receiver}}
`

// sinkExporter sends to the test's OTLP sink at {{sink}}; settings of
// the exporter may follow.
const sinkExporter = `exporters:
  otlp_http:
    endpoint: {{sink}}
    compression: none
`

// storageConfig keeps in-flight deployments and delivery ids on
// file_storage and exports traces to the sink; {{more_pipelines}} adds
// pipelines (logsPipeline).
const storageConfig = storageHead + `    storage: file_storage
processors:
  batch:
    timeout: 50ms
` + sinkExporter + `service:
  extensions: [health_check, file_storage]
  pipelines:
    traces:
      receivers: [fastdeploy]
      processors: [batch]
      exporters: [otlp_http]
{{more_pipelines}}  telemetry:
    metrics:
      level: none
`

// logsPipeline exports the receiver's logs too: each accepted event is
// one log record, so events can be counted at the sink.
const logsPipeline = `    logs:
      receivers: [fastdeploy]
      processors: [batch]
      exporters: [otlp_http]
`

// telemetryReader serves the collector's own metrics to Prometheus on
// {{telemetry}}; it ends a config's service section.
const telemetryReader = `  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: {{telemetry}}
`

// fillConfig fills a config template's {{name}} fields (ints and strings
// as they print) and fails the test on a field left unfilled, so a typo
// does not start a collector on a literal "{{port}}".
func fillConfig(t testing.TB, tmpl string, fields map[string]any) string {
	t.Helper()
	pairs := make([]string, 0, 2*len(fields))
	for name, v := range fields {
		pairs = append(pairs, "{{"+name+"}}", fmt.Sprint(v))
	}
	out := strings.NewReplacer(pairs...).Replace(tmpl)
	if i := strings.Index(out, "{{"); i >= 0 {
		t.Fatalf("config field left unfilled: %q", out[i:min(len(out), i+40)])
	}
	return out
}

// storageCollector is storageConfig with its own sink, ports and storage
// directory, not yet started: Start it again on the same storage for a
// restart.
type storageCollector struct {
	bin, cfg, healthURL string
	receiverPort        int
	sink                *otlpsink.Sink
}

func newStorageCollector(t *testing.T, morePipelines string) *storageCollector {
	t.Helper()
	bin := collectorproc.Binary(t)
	sink, err := otlpsink.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = sink.Close() })
	health, receiverPort := collectorproc.FreePort(t), collectorproc.FreePort(t)
	return &storageCollector{
		bin: bin,
		cfg: fillConfig(t, storageConfig, map[string]any{
			"health": health, "receiver": receiverPort, "sink": sink.Endpoint(),
			"dir": filepath.ToSlash(t.TempDir()), "more_pipelines": morePipelines,
		}),
		healthURL:    fmt.Sprintf("http://127.0.0.1:%d/", health),
		receiverPort: receiverPort,
		sink:         sink,
	}
}

// Start starts (or restarts) the collector and waits for its health check.
func (c *storageCollector) Start(t *testing.T) *collectorproc.Process {
	t.Helper()
	return collectorproc.Start(t, c.bin, c.cfg, c.healthURL)
}

// productionEnv is the environment config/production.yaml reads, for a
// collector on the test's ports ("receiver", "exporter"), certificate and
// state directory, sending OTLP to otlpEndpoint; more entries follow.
func productionEnv(ports map[string]int, cert selfSignedCert, state, otlpEndpoint string, more ...string) []string {
	return append(append(os.Environ(),
		"FASTDEPLOY_SECRET="+signingSecret,
		fmt.Sprintf("FASTDEPLOY_RECEIVER_ENDPOINT=127.0.0.1:%d", ports["receiver"]),
		"FASTDEPLOY_TLS_CERT_FILE="+cert.certFile,
		"FASTDEPLOY_TLS_KEY_FILE="+cert.keyFile,
		"FASTDEPLOY_OTLP_ENDPOINT="+otlpEndpoint,
		fmt.Sprintf("FASTDEPLOY_PROMETHEUS_ENDPOINT=127.0.0.1:%d", ports["exporter"]),
		"STATE_DIRECTORY="+state,
	), more...)
}

// deployerEnv is the environment of a deployer sending to the test's TLS
// collector: the signing secret, trust in the collector's self-signed
// certificate, HOME in dir; more entries follow.
func deployerEnv(cert selfSignedCert, dir string, more ...string) []string {
	return append(append(os.Environ(),
		"FASTDEPLOY_SECRET="+signingSecret,
		"SSL_CERT_FILE="+cert.certFile,
		"HOME="+dir,
	), more...)
}
