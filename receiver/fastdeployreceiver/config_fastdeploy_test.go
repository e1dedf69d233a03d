package fastdeployreceiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

func TestFastdeployConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     map[string]any
		wantErr string
		check   func(t *testing.T, c *Config)
	}{
		{name: "none", raw: map[string]any{}, check: func(t *testing.T, c *Config) {
			assert.False(t, c.Fastdeploy.Upstream.HasValue())
			assert.False(t, c.Fastdeploy.API.HasValue())
			assert.Equal(t, 30*time.Minute, c.Fastdeploy.DeploymentTokenLifetime, "fastdeploy's own")
		}},
		{name: "upstream short form", raw: map[string]any{"upstream": "https://fastdeploy.internal"}, check: func(t *testing.T, c *Config) {
			require.True(t, c.Fastdeploy.Upstream.HasValue())
			assert.Equal(t, "https://fastdeploy.internal", c.Fastdeploy.Upstream.Get().Endpoint)
			assert.Equal(t, defaultUpstreamTimeout, c.Fastdeploy.Upstream.Get().Timeout)
		}},
		{name: "upstream with client settings", raw: map[string]any{"upstream": map[string]any{"endpoint": "https://fastdeploy.internal/api", "timeout": "3s", "tls": map[string]any{"ca_file": "/etc/ca.pem"}}},
			check: func(t *testing.T, c *Config) {
				up := c.Fastdeploy.Upstream.Get()
				assert.Equal(t, 3*time.Second, up.Timeout)
				assert.Equal(t, "/etc/ca.pem", up.TLS.CAFile)
			}},
		{name: "api", raw: map[string]any{"api": map[string]any{"endpoint": "https://fastdeploy.internal", "username": "reader", "password": "from-env"}},
			check: func(t *testing.T, c *Config) {
				api := c.Fastdeploy.API.Get()
				assert.Equal(t, "reader", api.Username)
				assert.Equal(t, "from-env", string(api.Password))
				assert.Equal(t, defaultReauthMargin, api.ReauthMargin)
			}},
		// near misses
		{name: "upstream without scheme", raw: map[string]any{"upstream": "fastdeploy.internal"}, wantErr: "fastdeploy.upstream.endpoint"},
		{name: "upstream with query", raw: map[string]any{"upstream": "https://fastdeploy.internal/?x=1"}, wantErr: "fastdeploy.upstream.endpoint"},
		{name: "upstream zero timeout", raw: map[string]any{"upstream": map[string]any{"endpoint": "https://f.internal", "timeout": "0s"}}, wantErr: "fastdeploy.upstream.timeout"},
		{name: "api without password", raw: map[string]any{"api": map[string]any{"endpoint": "https://f.internal", "username": "reader"}}, wantErr: "fastdeploy.api.password"},
		{name: "api without username", raw: map[string]any{"api": map[string]any{"endpoint": "https://f.internal", "password": "x"}}, wantErr: "fastdeploy.api.username"},
		{name: "token lifetime", raw: map[string]any{"deployment_token_lifetime": "45m"}, check: func(t *testing.T, c *Config) {
			assert.Equal(t, 45*time.Minute, c.Fastdeploy.DeploymentTokenLifetime)
		}},
		{name: "token lifetime off", raw: map[string]any{"deployment_token_lifetime": "0s"}, check: func(t *testing.T, c *Config) {
			assert.Zero(t, c.Fastdeploy.DeploymentTokenLifetime)
		}},
		{name: "negative token lifetime", raw: map[string]any{"deployment_token_lifetime": "-1m"}, wantErr: "fastdeploy.deployment_token_lifetime"},
		{name: "api bad endpoint", raw: map[string]any{"api": map[string]any{"endpoint": "ws://f.internal", "username": "r", "password": "x"}}, wantErr: "fastdeploy.api.endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := createDefaultConfig()
			require.NoError(t, confmap.NewFromStringMap(map[string]any{"fastdeploy": tt.raw}).Unmarshal(cfg))
			err := confmap.Validate(cfg)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}
