package fastdeployreceiver

import (
	"errors"
	"fmt"
	"net"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
)

const (
	defaultEndpoint           = "127.0.0.1:8088"
	defaultSignatureTolerance = 5 * time.Minute
	defaultTimeout            = 2 * time.Hour
	defaultDedupWindow        = 10000
	defaultRetryAfter         = 5 * time.Second
	defaultReadTimeout        = 30 * time.Second
	defaultMaxRequestBodySize = 10 << 20
	defaultReadHeaderTimeout  = 10 * time.Second
	defaultMaxConcurrent      = 64
	defaultMaxConnections     = 1024
	// What requests may hold in total before their MAC is checked: four
	// bodies of the default maximum size.
	defaultMaxUnauthenticatedBuffer = 4 * defaultMaxRequestBodySize
	// A shorter HMAC key can be guessed offline from one captured request.
	minSecretBytes = 32
	// Far more deployments than run at once anywhere fastdeploy is used,
	// few enough that the state file rewritten on each request stays
	// small: at most 1000 × 32 KiB of context.
	defaultMaxInflightDeployments   = 1000
	defaultMaxDeploymentContextSize = 32 << 10
	// Ten open steps per deployment at the deployment cap; a step stores
	// about 0.3 KB (its message and stderr tail at most 4 KiB more).
	defaultMaxInflightSteps = 10000
)

// Config configures the fastdeploy receiver.
type Config struct {
	// ServerConfig is squashed so that endpoint, tls, auth and
	// max_request_body_size sit at the top of the receiver's section.
	confighttp.ServerConfig `mapstructure:",squash"`

	// Secret, when set, requires every request to carry a valid
	// X-Fastdeploy-Signature header.
	Secret configopaque.String `mapstructure:"secret"`
	// AllowUnauthenticated lets the receiver listen beyond loopback with
	// neither secret nor auth; without it such a config is refused.
	AllowUnauthenticated bool `mapstructure:"allow_unauthenticated"`
	// RefuseV1Signatures accepts v2 signatures only. Otherwise a v1
	// signature (timestamp and body only) is accepted on requests without
	// routing headers or query, where it covers all that routes the data.
	RefuseV1Signatures bool `mapstructure:"refuse_v1_signatures"`
	// MaxUnauthenticatedBuffer bounds the body bytes held, across all
	// requests, before their signature is verified; beyond it requests
	// get 429 with Retry-After.
	MaxUnauthenticatedBuffer int64 `mapstructure:"max_unauthenticated_buffer"`
	// SignatureTolerance bounds how far a signature's timestamp may be from
	// the collector's clock; it stops replays.
	SignatureTolerance time.Duration `mapstructure:"signature_tolerance"`
	// Timeout closes deployments and steps whose end never arrives, with
	// status timeout, after this long without news of them.
	Timeout time.Duration `mapstructure:"timeout"`
	// DedupWindow is how many delivery ids are remembered to drop repeats.
	DedupWindow int `mapstructure:"dedup_window"`
	// RetryAfter is what a 503 tells clients to wait when the pipeline
	// refuses data.
	RetryAfter time.Duration `mapstructure:"retry_after"`
	// MaxConcurrentRequests bounds the requests handled at once; more get
	// 429 with Retry-After at once instead of queueing behind the others.
	MaxConcurrentRequests int `mapstructure:"max_concurrent_requests"`
	// MaxConnections bounds open connections. A new connection beyond it
	// closes the longest-waiting connection (no request yet, else idle) of
	// the source holding the most; only when all serve requests is the new
	// one closed.
	MaxConnections int `mapstructure:"max_connections"`
	// MaxInflightDeployments bounds the deployments started and not
	// finished. A request that would exceed it closes the deployments idle
	// longest early, as timed out (track_cap.go); new deployments are never
	// refused for want of room.
	MaxInflightDeployments int `mapstructure:"max_inflight_deployments"`
	// MaxInflightSteps bounds the steps started and not finished, all
	// deployments together, by the same rule: the idlest close early.
	MaxInflightSteps int `mapstructure:"max_inflight_steps"`
	// MaxDeploymentContextSize bounds a deployment's context (all its
	// events' context merged), in bytes of JSON; beyond it the request gets
	// 413.
	MaxDeploymentContextSize int `mapstructure:"max_deployment_context_size"`
	// Storage names a storage extension (file_storage) that in-flight
	// deployments and delivery ids are written through to, so a restarted
	// collector still completes them.
	// LoadBalanced is set when several collectors share deployments
	// behind a load balancer (config/haproxy/haproxy.cfg). A collector then
	// closes as timed out only the deployments whose deployment.started it
	// accepted and that it heard of since it started; the state a
	// deployment left on a collector it moved away from is dropped at the
	// timeout, so no deployment gets a second root span.
	LoadBalanced bool          `mapstructure:"load_balanced"`
	Storage      *component.ID `mapstructure:"storage"`
	// FastdeployJWTSecret turns on fastdeploy's own endpoints (POST /steps/,
	// PUT /deployments/finish/), whose deployment tokens it verifies.
	FastdeployJWTSecret configopaque.String `mapstructure:"fastdeploy_jwt_secret"`
	// FastdeployServices names services for fastdeploy domain events, which
	// carry only a service_id.
	FastdeployServices map[string]string `mapstructure:"fastdeploy_services"`
	// Fastdeploy connects to an existing fastdeploy server: its deploy
	// calls proxied (upstream), its event stream followed (api).
	Fastdeploy FastdeployConfig `mapstructure:"fastdeploy"`
}

// isLoopback reports whether an endpoint only listens on this host.
func isLoopback(endpoint string) bool {
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func createDefaultConfig() *Config {
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = defaultEndpoint
	server.MaxRequestBodySize = defaultMaxRequestBodySize
	// Slow clients must not hold connections forever.
	server.ReadTimeout = defaultReadTimeout
	server.ReadHeaderTimeout = defaultReadHeaderTimeout
	return &Config{
		ServerConfig:          server,
		SignatureTolerance:    defaultSignatureTolerance,
		Timeout:               defaultTimeout,
		DedupWindow:           defaultDedupWindow,
		RetryAfter:            defaultRetryAfter,
		MaxConcurrentRequests: defaultMaxConcurrent,
		MaxConnections:        defaultMaxConnections,
		Fastdeploy:            defaultFastdeployConfig(),

		MaxInflightDeployments:   defaultMaxInflightDeployments,
		MaxDeploymentContextSize: defaultMaxDeploymentContextSize,
		MaxInflightSteps:         defaultMaxInflightSteps,

		MaxUnauthenticatedBuffer: defaultMaxUnauthenticatedBuffer,
	}
}

// Validate checks the receiver's own settings; confighttp validates its own.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("endpoint must not be empty"))
	} else if !isLoopback(cfg.NetAddr.Endpoint) && cfg.Secret == "" && !cfg.Auth.HasValue() && !cfg.AllowUnauthenticated {
		errs = append(errs, errors.New("endpoint is not loopback but neither secret nor auth is set: anyone who can reach it could post deployments; set secret or auth, or allow_unauthenticated: true"))
	}
	if cfg.Secret != "" && len(cfg.Secret) < minSecretBytes {
		errs = append(errs, fmt.Errorf("secret must be at least %d bytes (openssl rand -hex 32), got %d", minSecretBytes, len(cfg.Secret)))
	}
	if cfg.MaxUnauthenticatedBuffer <= 0 {
		errs = append(errs, fmt.Errorf("max_unauthenticated_buffer must be positive, got %d", cfg.MaxUnauthenticatedBuffer))
	}
	if cfg.MaxRequestBodySize < 0 {
		errs = append(errs, fmt.Errorf("max_request_body_size must not be negative, got %d", cfg.MaxRequestBodySize))
	}
	if cfg.SignatureTolerance <= 0 {
		errs = append(errs, fmt.Errorf("signature_tolerance must be positive, got %s", cfg.SignatureTolerance))
	}
	if cfg.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout must be positive, got %s", cfg.Timeout))
	}
	if cfg.DedupWindow < 0 {
		errs = append(errs, fmt.Errorf("dedup_window must not be negative, got %d", cfg.DedupWindow))
	}
	if cfg.MaxConcurrentRequests <= 0 {
		errs = append(errs, fmt.Errorf("max_concurrent_requests must be positive, got %d", cfg.MaxConcurrentRequests))
	}
	if cfg.MaxConnections < cfg.MaxConcurrentRequests {
		errs = append(errs, fmt.Errorf("max_connections (%d) must be at least max_concurrent_requests (%d)", cfg.MaxConnections, cfg.MaxConcurrentRequests))
	}
	if cfg.MaxInflightDeployments <= 0 {
		errs = append(errs, fmt.Errorf("max_inflight_deployments must be positive, got %d", cfg.MaxInflightDeployments))
	}
	if cfg.MaxInflightSteps <= 0 {
		errs = append(errs, fmt.Errorf("max_inflight_steps must be positive, got %d", cfg.MaxInflightSteps))
	}
	if cfg.MaxDeploymentContextSize <= 0 {
		errs = append(errs, fmt.Errorf("max_deployment_context_size must be positive, got %d", cfg.MaxDeploymentContextSize))
	}
	if cfg.RetryAfter < time.Second {
		errs = append(errs, fmt.Errorf("retry_after must be at least 1s, got %s", cfg.RetryAfter))
	}
	if err := cfg.Fastdeploy.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
