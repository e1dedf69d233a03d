package fastdeployreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/fastdeploy/otelcol-fastdeploy/receiver/fastdeployreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	custom := createDefaultConfig()
	custom.NetAddr.Endpoint = "127.0.0.1:9099"
	custom.MaxRequestBodySize = 1 << 20
	custom.Secret = "a-secret-for-tests-only-0123456789abcdef"
	custom.SignatureTolerance = time.Minute
	custom.Timeout = 30 * time.Minute
	custom.DedupWindow = 500
	custom.RetryAfter = 10 * time.Second

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig()},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: custom},
		{id: component.NewIDWithName(metadata.Type, "bad_timeout"), wantErr: "timeout must be positive"},
		{id: component.NewIDWithName(metadata.Type, "bad_retry_after"), wantErr: "retry_after must be at least 1s"},
		{id: component.NewIDWithName(metadata.Type, "bad_dedup"), wantErr: "dedup_window must not be negative"},
		{id: component.NewIDWithName(metadata.Type, "empty_endpoint"), wantErr: "endpoint must not be empty"},
		{id: component.NewIDWithName(metadata.Type, "open_unauthenticated"), wantErr: "neither secret nor auth is set"},
		{id: component.NewIDWithName(metadata.Type, "short_secret"), wantErr: "secret must be at least 32 bytes"},
		{id: component.NewIDWithName(metadata.Type, "secret_32_bytes"), want: func() *Config {
			c := createDefaultConfig()
			c.Secret = "0123456789abcdef0123456789abcdef"
			return c
		}()},
		{id: component.NewIDWithName(metadata.Type, "no_unauthenticated_buffer"), wantErr: "max_unauthenticated_buffer must be positive"},
		{id: component.NewIDWithName(metadata.Type, "no_inflight_cap"), wantErr: "max_inflight_deployments must be positive"},
		{id: component.NewIDWithName(metadata.Type, "negative_context_size"), wantErr: "max_deployment_context_size must be positive"},
		{id: component.NewIDWithName(metadata.Type, "no_step_cap"), wantErr: "max_inflight_steps must be positive"},
		{id: component.NewIDWithName(metadata.Type, "small_caps"), want: func() *Config {
			c := createDefaultConfig()
			c.MaxInflightDeployments, c.MaxDeploymentContextSize = 1, 1
			return c
		}()},
		{id: component.NewIDWithName(metadata.Type, "open_allowed"), want: func() *Config {
			c := createDefaultConfig()
			c.NetAddr.Endpoint = "0.0.0.0:8088"
			c.AllowUnauthenticated = true
			return c
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			t.Parallel()
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestDefaultConfigIsLoopbackAndBounded(t *testing.T) {
	t.Parallel()
	cfg := createDefaultConfig()
	assert.Equal(t, "127.0.0.1:8088", cfg.NetAddr.Endpoint)
	assert.Positive(t, cfg.MaxRequestBodySize)
	assert.Positive(t, cfg.ReadTimeout, "slow clients must not hold connections forever")
	require.NoError(t, confmap.Validate(cfg))
}
