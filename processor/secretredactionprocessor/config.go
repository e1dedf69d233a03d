package secretredactionprocessor

import (
	"errors"
	"fmt"
	"regexp"

	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/secrets"
)

// minHashKeyBytes keeps the keyed hash from being brute-forced through a weak key.
const minHashKeyBytes = 32

// RuleConfig is a user-defined secret format.
type RuleConfig struct {
	// Name appears in placeholders and in the redaction counter.
	Name string `mapstructure:"name"`
	// Pattern is a Go regular expression. The secret is its last capture
	// group that took part in the match, or the whole match.
	Pattern string `mapstructure:"pattern"`
	// Keywords: one must occur (case-insensitive) before Pattern runs. Leave
	// empty only for rare patterns: the pattern then runs on every string.
	Keywords []string `mapstructure:"keywords"`
	_        struct{}
}

// Config of the secret_redaction processor.
type Config struct {
	// Rules are added to the built-in catalogue.
	Rules []RuleConfig `mapstructure:"rules"`
	// DisabledRules names built-in rules to switch off.
	DisabledRules []string `mapstructure:"disabled_rules"`
	// SecretKeys are more key names (or words of keys) whose values are
	// masked whole, in addition to password, token, secret, api_key, ...
	SecretKeys []string `mapstructure:"secret_keys"`
	// AllowedKeys are attribute and map keys whose values are never touched.
	AllowedKeys []string `mapstructure:"allowed_keys"`
	// AllowedValues are regular expressions; a secret they match is kept.
	AllowedValues []string `mapstructure:"allowed_values"`
	// HashKey, when set (at least 32 bytes), adds the first 12 hex digits of
	// HMAC-SHA256(key, secret) to each placeholder so equal secrets can be
	// correlated without being revealed.
	HashKey configopaque.String `mapstructure:"hash_key"`
	// Summary adds redaction.count and redaction.rules to each span, log
	// record and data point that had something redacted.
	Summary bool `mapstructure:"summary"`
	_       struct{}
}

// Validate checks every rule and pattern, naming the rule that is wrong.
func (cfg *Config) Validate() error {
	var errs []error
	builtin := map[string]bool{secrets.KeyRuleName: true}
	for _, r := range secrets.Catalogue() {
		builtin[r.Name] = true
	}
	seen := map[string]bool{}
	for i, r := range cfg.Rules {
		switch {
		case r.Name == "":
			errs = append(errs, fmt.Errorf("rules[%d]: name must not be empty", i))
			continue
		case builtin[r.Name]:
			errs = append(errs, fmt.Errorf("rule %q: name is taken by a built-in rule", r.Name))
		case seen[r.Name]:
			errs = append(errs, fmt.Errorf("rule %q: defined twice", r.Name))
		}
		seen[r.Name] = true
		if r.Pattern == "" {
			errs = append(errs, fmt.Errorf("rule %q: pattern must not be empty", r.Name))
		} else if _, err := regexp.Compile(r.Pattern); err != nil {
			errs = append(errs, fmt.Errorf("rule %q: invalid pattern: %w", r.Name, err))
		}
		for _, kw := range r.Keywords {
			if kw == "" {
				errs = append(errs, fmt.Errorf("rule %q: keywords must not be empty strings", r.Name))
			}
		}
	}
	for _, d := range cfg.DisabledRules {
		if !builtin[d] || d == secrets.KeyRuleName {
			errs = append(errs, fmt.Errorf("disabled_rules: %q is not a built-in rule", d))
		}
	}
	for _, v := range cfg.AllowedValues {
		if _, err := regexp.Compile(v); err != nil {
			errs = append(errs, fmt.Errorf("allowed_values: invalid pattern %q: %w", v, err))
		}
	}
	if n := len(cfg.HashKey); n > 0 && n < minHashKeyBytes {
		errs = append(errs, fmt.Errorf("hash_key must be at least %d bytes, got %d", minHashKeyBytes, n))
	}
	if n := len(builtin) - len(cfg.DisabledRules) + len(cfg.Rules); n > secrets.MaxRules {
		errs = append(errs, fmt.Errorf("%d rules, at most %d are supported", n, secrets.MaxRules))
	}
	return errors.Join(errs...)
}

// engineOptions turns a validated config into engine options.
func (cfg *Config) engineOptions() (secrets.Options, error) {
	opts := secrets.Options{
		Disabled:        cfg.DisabledRules,
		ExtraSecretKeys: cfg.SecretKeys,
	}
	for _, r := range cfg.Rules {
		opts.Extra = append(opts.Extra, secrets.Rule{Name: r.Name, Pattern: r.Pattern, Keywords: r.Keywords,
			Multiline: multiline(r.Pattern)})
	}
	for _, v := range cfg.AllowedValues {
		re, err := regexp.Compile(v)
		if err != nil {
			return opts, fmt.Errorf("allowed_values: %w", err)
		}
		opts.AllowedValues = append(opts.AllowedValues, re)
	}
	if cfg.HashKey != "" {
		opts.HashKey = []byte(cfg.HashKey)
	}
	return opts, nil
}

// multiline: a user pattern that can cross lines must see whole strings.
func multiline(pattern string) bool {
	return regexp.MustCompile(`\(\?[a-zA-Z]*s|\\n|\\s|\[\^`).MatchString(pattern)
}
