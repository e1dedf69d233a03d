package deploymetricsconnector

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployattr"
)

// Aggregation temporalities accepted by aggregation_temporality.
const (
	TemporalityCumulative = "cumulative"
	TemporalityDelta      = "delta"
)

// Histogram kinds accepted by histograms.type.
const (
	HistogramExplicit    = "explicit"
	HistogramExponential = "exponential"
)

// Config configures the deploy_metrics connector.
type Config struct {
	// MetricsFlushInterval is how often the aggregated metrics are emitted.
	MetricsFlushInterval time.Duration `mapstructure:"metrics_flush_interval"`
	// AggregationTemporality is cumulative (what Prometheus expects) or delta.
	AggregationTemporality string `mapstructure:"aggregation_temporality"`
	// Spans says which spans are deployments and which are steps.
	Spans SpansConfig `mapstructure:"spans"`
	// Attributes names the attributes the labels and figures are read from.
	Attributes AttributesConfig `mapstructure:"attributes"`
	// Histograms configures the four duration histograms.
	Histograms HistogramsConfig `mapstructure:"histograms"`
	// StepNames bounds the cardinality of the step_name label.
	StepNames StepNamesConfig `mapstructure:"step_names"`
	// Exemplars attaches trace ids to histogram points.
	Exemplars ExemplarsConfig `mapstructure:"exemplars"`
	// ActiveDeployments configures the active_deployments gauge.
	ActiveDeployments ActiveDeploymentsConfig `mapstructure:"active_deployments"`
	// MaxSeriesPerMetric caps the series of each metric; further label sets
	// are recorded in one series labelled otel.metric.overflow="true".
	MaxSeriesPerMetric int `mapstructure:"max_series_per_metric"`
	// SeriesExpiration drops series not updated for this long (0 keeps them).
	SeriesExpiration time.Duration `mapstructure:"series_expiration"`
	// DeduplicationWindow is how many deployment and step spans (trace and
	// span id) are remembered to drop redeliveries.
	DeduplicationWindow int `mapstructure:"deduplication_window"`
	// TimeToRestoreHistory is how many deployment outcomes are kept per
	// service and environment to place late and out-of-order outcomes.
	TimeToRestoreHistory int `mapstructure:"time_to_restore_history"`
	// Storage names a storage extension (file_storage) the cumulative
	// counts are written through to before a batch is acknowledged, so a
	// collector that is killed and restarted continues its series instead
	// of losing what it counted since the last scrape.
	Storage *component.ID `mapstructure:"storage"`
	// SharedLedger, for collectors behind a load balancer, keeps a span
	// redelivered to a second collector (a retry after failover) from
	// being counted by both.
	SharedLedger SharedLedgerConfig `mapstructure:"shared_ledger"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SharedLedgerConfig names a directory every collector of the group
// writes (internal/claimledger): the first collector to claim a span
// counts it, the others see the claim and do not. Off without directory.
type SharedLedgerConfig struct {
	// Directory is shared by every collector of the group: one host's
	// disk, or a network file system with atomic exclusive create (NFSv3
	// and later, CephFS).
	Directory string `mapstructure:"directory"`
	// Retention is how long a span's claim is kept at least (at most
	// twice that), counted from the span's start: a redelivery later than
	// that counts again on a collector that did not count it.
	Retention time.Duration `mapstructure:"retention"`
	// ClaimTimeout is how long a collector waits for the commit of a span
	// another collector claimed (normally a millisecond away) before it
	// takes the claim over, the claimer presumed dead.
	ClaimTimeout time.Duration `mapstructure:"claim_timeout"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SpansConfig identifies deployment and step spans. A span whose kind
// attribute is set is classified by it alone; other spans are deployment
// spans when they carry DeploymentAttribute and not StepAttribute, and step
// spans when they carry StepAttribute. Everything else is ignored.
type SpansConfig struct {
	KindAttribute       string `mapstructure:"kind_attribute"`
	DeploymentKind      string `mapstructure:"deployment_kind"`
	StepKind            string `mapstructure:"step_kind"`
	DeploymentAttribute string `mapstructure:"deployment_attribute"`
	StepAttribute       string `mapstructure:"step_attribute"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// AttributesConfig names the attributes read from spans and log records.
type AttributesConfig struct {
	// Service is read from the resource, then from the span or log record.
	Service string `mapstructure:"service"`
	// Environment is read from the span or log record, then the resource.
	Environment  string `mapstructure:"environment"`
	DeploymentID string `mapstructure:"deployment_id"`
	// Status lists attributes tried in order; the span status is the last resort.
	Status []string `mapstructure:"status"`
	// StepName falls back to the span name.
	StepName  string `mapstructure:"step_name"`
	ErrorType string `mapstructure:"error_type"`
	// CommitTime holds the change's commit time (RFC 3339 string or Unix
	// seconds) for deployment_lead_time_seconds.
	CommitTime string `mapstructure:"commit_time"`
	// EventAction is the log attribute naming the lifecycle event.
	EventAction string `mapstructure:"event_action"`
	// Ignored marks a failed step the deployment carried on past
	// (continue_on_error): a true boolean keeps it out of
	// step_failures_total; its duration is still recorded.
	Ignored string `mapstructure:"ignored"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// HistogramsConfig configures the duration histograms.
type HistogramsConfig struct {
	// Type is explicit (buckets below) or exponential.
	Type string `mapstructure:"type"`
	// ExponentialMaxSize is the bucket count of exponential histograms.
	ExponentialMaxSize int32 `mapstructure:"exponential_max_size"`

	DeploymentDurationBuckets []time.Duration `mapstructure:"deployment_duration_buckets"`
	StepDurationBuckets       []time.Duration `mapstructure:"step_duration_buckets"`
	TimeToRestoreBuckets      []time.Duration `mapstructure:"time_to_restore_buckets"`
	LeadTimeBuckets           []time.Duration `mapstructure:"lead_time_buckets"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// StepNamesConfig normalises step names so that ids, hosts and numbers do
// not become label values.
type StepNamesConfig struct {
	// Rules are applied in order; each replaces every match of Pattern.
	Rules []StepNameRule `mapstructure:"rules"`
	// MaxLength truncates longer names (in bytes, on a rune boundary).
	MaxLength int `mapstructure:"max_length"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// StepNameRule replaces matches of a regular expression; the replacement
// may refer to groups as ${1}.
type StepNameRule struct {
	Pattern     string `mapstructure:"pattern"`
	Replacement string `mapstructure:"replacement"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ExemplarsConfig configures exemplars on the histograms.
type ExemplarsConfig struct {
	Enabled bool `mapstructure:"enabled"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ActiveDeploymentsConfig configures the active_deployments gauge.
type ActiveDeploymentsConfig struct {
	// Timeout lowers the gauge for a deployment whose finish never came,
	// measured from its start event time.
	Timeout time.Duration `mapstructure:"timeout"`
	// MaxTracked caps the deployments held in flight.
	MaxTracked int `mapstructure:"max_tracked"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// defaultStepNameRules keep credentials, ids, addresses and host names out
// of step_name.
func defaultStepNameRules() []StepNameRule {
	return []StepNameRule{
		{Pattern: `(?i)\b(password|passwd|secret|token|api[_-]?key|authorization)\b\s*[=:]?\s*(?:(?:bearer|basic)\s+)?\S+`, Replacement: "${1}=[REDACTED]"},
		{Pattern: `(?i)\b(bearer)\s+\S+`, Replacement: "${1} [REDACTED]"},
		{Pattern: `[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`, Replacement: "{uuid}"},
		{Pattern: `\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b`, Replacement: "{ip}"},
		{Pattern: `\b[A-Za-z0-9-]+(\.[A-Za-z0-9-]+){2,}\b`, Replacement: "{host}"},
		{Pattern: `\b\d{4,}\b`, Replacement: "{n}"},
		{Pattern: `\b[0-9a-f]{7,64}\b`, Replacement: "{hex}"},
	}
}

func seconds(values ...float64) []time.Duration {
	out := make([]time.Duration, len(values))
	for i, v := range values {
		out[i] = time.Duration(v * float64(time.Second))
	}
	return out
}

const (
	minute = 60
	hour   = 60 * minute
	day    = 24 * hour
)

func createDefaultConfig() *Config {
	return &Config{
		MetricsFlushInterval:   15 * time.Second,
		AggregationTemporality: TemporalityCumulative,
		Spans: SpansConfig{
			KindAttribute:       deployattr.SpanKind,
			DeploymentKind:      deployattr.SpanKindDeployment,
			StepKind:            deployattr.SpanKindStep,
			DeploymentAttribute: deployattr.DeploymentID,
			StepAttribute:       deployattr.TaskName,
		},
		Attributes: AttributesConfig{
			Service:      deployattr.ServiceName,
			Environment:  deployattr.DeploymentEnvironment,
			DeploymentID: deployattr.DeploymentID,
			Status:       []string{deployattr.Status, deployattr.PipelineResult, deployattr.TaskRunResult, deployattr.DeploymentStatus},
			StepName:     deployattr.TaskName,
			ErrorType:    deployattr.ErrorType,
			CommitTime:   deployattr.VCSRevisionTime,
			EventAction:  deployattr.LogEventAction,
			Ignored:      deployattr.StepIgnored,
		},
		Histograms: HistogramsConfig{
			Type:                      HistogramExplicit,
			ExponentialMaxSize:        160,
			DeploymentDurationBuckets: seconds(1, 5, 15, 30, minute, 2*minute, 5*minute, 10*minute, 15*minute, 30*minute, hour, 2*hour),
			StepDurationBuckets:       seconds(0.1, 0.5, 1, 5, 15, 30, minute, 2*minute, 5*minute, 10*minute, 30*minute, hour),
			TimeToRestoreBuckets:      seconds(minute, 5*minute, 15*minute, 30*minute, hour, 2*hour, 4*hour, 8*hour, day, 2*day, 7*day),
			LeadTimeBuckets:           seconds(5*minute, 15*minute, 30*minute, hour, 2*hour, 4*hour, 8*hour, day, 2*day, 7*day, 14*day, 30*day),
		},
		StepNames: StepNamesConfig{
			Rules:     defaultStepNameRules(),
			MaxLength: 64,
		},
		Exemplars: ExemplarsConfig{Enabled: true},
		ActiveDeployments: ActiveDeploymentsConfig{
			Timeout:    2 * time.Hour,
			MaxTracked: 10000,
		},
		MaxSeriesPerMetric:   2000,
		SeriesExpiration:     24 * time.Hour,
		DeduplicationWindow:  20000,
		SharedLedger:         SharedLedgerConfig{Retention: 6 * time.Hour, ClaimTimeout: 2 * time.Second},
		TimeToRestoreHistory: 16,
	}
}

// Validate checks the configuration; the collector calls it before start.
func (c *Config) Validate() error {
	var errs []error
	if c.Storage != nil && c.AggregationTemporality == TemporalityDelta {
		errs = append(errs, errors.New("storage keeps cumulative counts across restarts; with aggregation_temporality delta there are none to keep"))
	}
	if c.Storage != nil && c.Histograms.Type == HistogramExponential {
		errs = append(errs, errors.New("storage persists explicit-bucket histograms only; use histograms.type explicit or no storage"))
	}
	if c.MetricsFlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("metrics_flush_interval must be positive, got %s", c.MetricsFlushInterval))
	}
	if c.AggregationTemporality != TemporalityCumulative && c.AggregationTemporality != TemporalityDelta {
		errs = append(errs, fmt.Errorf("aggregation_temporality must be %q or %q, got %q", TemporalityCumulative, TemporalityDelta, c.AggregationTemporality))
	}
	if c.Spans.KindAttribute == "" && c.Spans.DeploymentAttribute == "" {
		errs = append(errs, errors.New("spans: kind_attribute or deployment_attribute must be set, or no span is a deployment"))
	}
	if c.Spans.KindAttribute != "" && (c.Spans.DeploymentKind == "" || c.Spans.StepKind == "") {
		errs = append(errs, errors.New("spans: deployment_kind and step_kind must be set when kind_attribute is"))
	}
	if c.Spans.DeploymentKind != "" && c.Spans.DeploymentKind == c.Spans.StepKind {
		errs = append(errs, fmt.Errorf("spans: deployment_kind and step_kind must differ, both are %q", c.Spans.DeploymentKind))
	}
	if c.Attributes.Service == "" {
		errs = append(errs, errors.New("attributes: service must be set"))
	}
	if c.Attributes.DeploymentID == "" {
		errs = append(errs, errors.New("attributes: deployment_id must be set"))
	}
	if c.Attributes.EventAction == "" {
		errs = append(errs, errors.New("attributes: event_action must be set"))
	}
	if slices.Contains(c.Attributes.Status, "") {
		errs = append(errs, errors.New("attributes: status must not list an empty attribute name"))
	}
	errs = append(errs, c.Histograms.validate()...)
	for i, r := range c.StepNames.Rules {
		if r.Pattern == "" {
			errs = append(errs, fmt.Errorf("step_names: rules[%d]: pattern must be set", i))
			continue
		}
		if _, err := regexp.Compile(r.Pattern); err != nil {
			errs = append(errs, fmt.Errorf("step_names: rules[%d]: invalid pattern: %w", i, err))
		}
	}
	if c.StepNames.MaxLength < 0 {
		errs = append(errs, fmt.Errorf("step_names: max_length must not be negative, got %d", c.StepNames.MaxLength))
	}
	if c.ActiveDeployments.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("active_deployments: timeout must be positive, got %s", c.ActiveDeployments.Timeout))
	}
	if c.ActiveDeployments.MaxTracked <= 0 {
		errs = append(errs, fmt.Errorf("active_deployments: max_tracked must be positive, got %d", c.ActiveDeployments.MaxTracked))
	}
	if c.MaxSeriesPerMetric <= 0 {
		errs = append(errs, fmt.Errorf("max_series_per_metric must be positive, got %d", c.MaxSeriesPerMetric))
	}
	if c.SeriesExpiration < 0 {
		errs = append(errs, fmt.Errorf("series_expiration must not be negative, got %s", c.SeriesExpiration))
	}
	if l := c.SharedLedger; l.Directory != "" {
		if l.Retention < time.Minute {
			errs = append(errs, fmt.Errorf("shared_ledger: retention must be at least 1m, got %s", l.Retention))
		}
		if l.ClaimTimeout <= 0 || l.ClaimTimeout >= l.Retention {
			errs = append(errs, fmt.Errorf("shared_ledger: claim_timeout must be positive and shorter than retention, got %s", l.ClaimTimeout))
		}
	}
	if c.DeduplicationWindow < 0 {
		errs = append(errs, fmt.Errorf("deduplication_window must not be negative, got %d", c.DeduplicationWindow))
	}
	if c.TimeToRestoreHistory < 1 {
		errs = append(errs, fmt.Errorf("time_to_restore_history must be at least 1, got %d", c.TimeToRestoreHistory))
	}
	return errors.Join(errs...)
}

func (h *HistogramsConfig) validate() []error {
	var errs []error
	switch h.Type {
	case HistogramExplicit:
	case HistogramExponential:
		if h.ExponentialMaxSize < 2 {
			errs = append(errs, fmt.Errorf("histograms: exponential_max_size must be at least 2, got %d", h.ExponentialMaxSize))
		}
	default:
		errs = append(errs, fmt.Errorf("histograms: type must be %q or %q, got %q", HistogramExplicit, HistogramExponential, h.Type))
	}
	for _, b := range []struct {
		name    string
		buckets []time.Duration
	}{
		{"deployment_duration_buckets", h.DeploymentDurationBuckets},
		{"step_duration_buckets", h.StepDurationBuckets},
		{"time_to_restore_buckets", h.TimeToRestoreBuckets},
		{"lead_time_buckets", h.LeadTimeBuckets},
	} {
		name, buckets := b.name, b.buckets
		if h.Type == HistogramExplicit && len(buckets) == 0 {
			errs = append(errs, fmt.Errorf("histograms: %s must not be empty", name))
		}
		for i := 1; i < len(buckets); i++ {
			if buckets[i] <= buckets[i-1] {
				errs = append(errs, fmt.Errorf("histograms: %s must be strictly increasing, %s follows %s", name, buckets[i], buckets[i-1]))
				break
			}
		}
	}
	return errs
}
