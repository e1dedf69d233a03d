package deploymetricsconnector

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/fastdeploy/otelcol-fastdeploy/connector/deploymetricsconnector/internal/metadata"
)

func loadConfig(t *testing.T, file string, id component.ID) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", file))
	require.NoError(t, err)
	sub, err := cm.Sub(id.String())
	require.NoError(t, err)
	cfg := createDefaultConfig()
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg, confmap.Validate(cfg)
}

func TestLoadConfig(t *testing.T) {
	custom := createDefaultConfig()
	custom.MetricsFlushInterval = 30 * time.Second
	custom.AggregationTemporality = TemporalityDelta
	custom.Spans.KindAttribute = ""
	custom.Spans.DeploymentAttribute = "cicd.pipeline.run.id"
	custom.Attributes.Environment = "env"
	custom.Attributes.Status = []string{"cicd.pipeline.result"}
	custom.Histograms.Type = HistogramExponential
	custom.Histograms.ExponentialMaxSize = 80
	custom.StepNames = StepNamesConfig{Rules: []StepNameRule{{Pattern: `\d+`, Replacement: "N"}}, MaxLength: 32}
	custom.Exemplars.Enabled = false
	custom.ActiveDeployments = ActiveDeploymentsConfig{Timeout: 6 * time.Hour, MaxTracked: 500}
	custom.MaxSeriesPerMetric = 100
	custom.SeriesExpiration = 0
	custom.DeduplicationWindow = 0
	custom.TimeToRestoreHistory = 4
	custom.SharedLedger = SharedLedgerConfig{Directory: "/srv/otelcol-fastdeploy/ledger", Retention: 2 * time.Hour, ClaimTimeout: 500 * time.Millisecond}

	tests := []struct {
		id   component.ID
		want *Config
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig()},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: custom},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg, err := loadConfig(t, "config.yaml", tt.id)
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		want string
	}{
		{"flush", "metrics_flush_interval must be positive, got 0s"},
		{"temporality", `aggregation_temporality must be "cumulative" or "delta", got "sometimes"`},
		{"buckets", "histograms: deployment_duration_buckets must be strictly increasing, 5s follows 10s"},
		{"histogram_type", `histograms: type must be "explicit" or "exponential", got "linear"`},
		{"pattern", "step_names: rules[0]: invalid pattern: error parsing regexp"},
		{"no_identification", "spans: kind_attribute or deployment_attribute must be set"},
		{"same_kinds", `spans: deployment_kind and step_kind must differ, both are "step"`},
		{"series_cap", "max_series_per_metric must be positive, got 0"},
		{"timeout", "active_deployments: timeout must be positive, got 0s"},
		{"empty_status_key", "attributes: status must not list an empty attribute name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(t, "invalid.yaml", component.NewIDWithName(metadata.Type, tt.name))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	require.NoError(t, createDefaultConfig().Validate())
}
