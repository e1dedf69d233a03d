package fastdeployreceiver

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
)

const (
	defaultUpstreamTimeout = 10 * time.Second
	defaultReauthMargin    = time.Minute
	// fastdeploy issues a deployment's token as it starts the deployment,
	// valid for 30 minutes (get_deploy_environment).
	defaultDeploymentTokenLifetime = 30 * time.Minute
)

// FastdeployConfig connects the receiver to an existing fastdeploy server.
type FastdeployConfig struct {
	// Upstream is fastdeploy's own URL. With it, the deploy process's calls
	// (POST /steps/, PUT /deployments/finish/) and every other path that is
	// not the receiver's are forwarded to it unchanged, its answer is the
	// answer, and only what it accepted (2xx) becomes telemetry. A plain
	// string is the endpoint alone.
	Upstream configoptional.Optional[confighttp.ClientConfig] `mapstructure:"upstream"`
	// API follows fastdeploy's event stream as a (read-only) user.
	API configoptional.Optional[FastdeployAPIConfig] `mapstructure:"api"`
	// DeploymentTokenLifetime is how long fastdeploy's deployment tokens
	// are valid. fastdeploy issues the token as it starts the deployment,
	// so its expiry less this lifetime is the deployment's start, to the
	// second; the deploy process sends the token with every call, and a
	// collector that takes a deployment over mid-way (scale-out, failover)
	// starts the root span there instead of at the first step it saw. 0
	// reads nothing from the expiry.
	DeploymentTokenLifetime time.Duration `mapstructure:"deployment_token_lifetime"`
}

// tokenIssued is when fastdeploy issued tok; zero when unknown.
func (c *FastdeployConfig) tokenIssued(tok deploymentJWT) time.Time {
	if c.DeploymentTokenLifetime <= 0 || tok.expires.IsZero() {
		return time.Time{}
	}
	return tok.expires.Add(-c.DeploymentTokenLifetime)
}

// FastdeployAPIConfig is how the receiver logs in to fastdeploy's API.
type FastdeployAPIConfig struct {
	// ClientConfig's endpoint is fastdeploy's base URL; tls and timeout
	// apply to the login, the services list and the websocket.
	confighttp.ClientConfig `mapstructure:",squash"`
	Username                string              `mapstructure:"username"`
	Password                configopaque.String `mapstructure:"password"`
	// ReauthMargin is how long before the token expires a new one is sent.
	ReauthMargin time.Duration `mapstructure:"reauth_margin"`
	// MaxBackoff bounds the wait between reconnects.
	MaxBackoff time.Duration `mapstructure:"max_backoff"`
}

func defaultFastdeployConfig() FastdeployConfig {
	upstream := confighttp.NewDefaultClientConfig()
	upstream.Timeout = defaultUpstreamTimeout
	api := FastdeployAPIConfig{ClientConfig: confighttp.NewDefaultClientConfig(), ReauthMargin: defaultReauthMargin, MaxBackoff: 30 * time.Second}
	api.Timeout = 30 * time.Second
	return FastdeployConfig{
		Upstream:                configoptional.Default(upstream),
		API:                     configoptional.Default(api),
		DeploymentTokenLifetime: defaultDeploymentTokenLifetime,
	}
}

// Unmarshal accepts `upstream: https://fastdeploy.internal` as the short
// form of `upstream: {endpoint: ...}`.
func (c *FastdeployConfig) Unmarshal(conf *confmap.Conf) error {
	raw := conf.ToStringMap()
	if s, ok := raw["upstream"].(string); ok {
		raw["upstream"] = map[string]any{"endpoint": s}
		conf = confmap.NewFromStringMap(raw)
	}
	type plain FastdeployConfig
	return conf.Unmarshal((*plain)(c))
}

func validateBaseURL(field, endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s: must be an http(s) URL with a host and no query, got %q", field, endpoint)
	}
	return nil
}

// Validate checks the fastdeploy connection settings.
func (c *FastdeployConfig) Validate() error {
	var errs []error
	if c.DeploymentTokenLifetime < 0 {
		errs = append(errs, fmt.Errorf("fastdeploy.deployment_token_lifetime must not be negative, got %s", c.DeploymentTokenLifetime))
	}
	if c.Upstream.HasValue() {
		up := c.Upstream.Get()
		if err := validateBaseURL("fastdeploy.upstream.endpoint", up.Endpoint); err != nil {
			errs = append(errs, err)
		}
		if up.Timeout <= 0 {
			errs = append(errs, fmt.Errorf("fastdeploy.upstream.timeout must be positive, got %s", up.Timeout))
		}
	}
	if c.API.HasValue() {
		api := c.API.Get()
		if err := validateBaseURL("fastdeploy.api.endpoint", api.Endpoint); err != nil {
			errs = append(errs, err)
		}
		if api.Username == "" {
			errs = append(errs, errors.New("fastdeploy.api.username is required"))
		}
		if api.Password == "" {
			errs = append(errs, errors.New("fastdeploy.api.password is required (e.g. ${env:FASTDEPLOY_API_PASSWORD})"))
		}
		if api.ReauthMargin <= 0 {
			errs = append(errs, fmt.Errorf("fastdeploy.api.reauth_margin must be positive, got %s", api.ReauthMargin))
		}
		if api.MaxBackoff <= 0 {
			errs = append(errs, fmt.Errorf("fastdeploy.api.max_backoff must be positive, got %s", api.MaxBackoff))
		}
	}
	return errors.Join(errs...)
}
