package secretredactionprocessor

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/fastdeploy/otelcol-fastdeploy/processor/secretredactionprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	tests := []struct {
		id      string
		want    *Config
		wantErr []string
	}{
		{id: "", want: &Config{}},
		{id: "custom", want: &Config{
			Rules:         []RuleConfig{{Name: "acme_internal_token", Pattern: "acme_[0-9a-f]{32}", Keywords: []string{"acme_"}}},
			DisabledRules: []string{"jwt", "mailchimp_api_key"},
			SecretKeys:    []string{"x-acme-signature", "vendor_blob"},
			AllowedKeys:   []string{"deployment.id"},
			AllowedValues: []string{"^sha256:[0-9a-f]{64}$"},
			HashKey:       "0123456789abcdef0123456789abcdef",
			Summary:       true,
		}},
		{id: "bad_pattern", wantErr: []string{`rule "broken_rule": invalid pattern`}},
		{id: "duplicate", wantErr: []string{`rule "twice": defined twice`}},
		{id: "builtin_name", wantErr: []string{`rule "github_token": name is taken by a built-in rule`}},
		{id: "empty", wantErr: []string{"rules[0]: name must not be empty", `rule "no_pattern": pattern must not be empty`}},
		{id: "unknown_disabled", wantErr: []string{`disabled_rules: "no_such_rule" is not a built-in rule`}},
		{id: "short_hash_key", wantErr: []string{"hash_key must be at least 32 bytes, got 9"}},
		{id: "bad_allowed_value", wantErr: []string{"allowed_values: invalid pattern"}},
		{id: "empty_keyword", wantErr: []string{`rule "kw": keywords must not be empty strings`}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel()
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(component.NewIDWithName(metadata.Type, tt.id).String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.want, cfg)
				return
			}
			require.Error(t, err)
			for _, w := range tt.wantErr {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

func TestValidateDoesNotEchoHashKey(t *testing.T) {
	t.Parallel()
	cfg := &Config{HashKey: "short-but-secret"}
	err := cfg.Validate()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "short-but-secret")
}

func TestMultilineUserPattern(t *testing.T) {
	t.Parallel()
	assert.True(t, multiline(`(?s)BEGIN.*END`))
	assert.True(t, multiline(`a\nb`))
	assert.False(t, multiline(`acme_[0-9a-f]{32}`))
}
