// Package secretredactionprocessor removes credentials from traces, logs and
// metrics before they leave the collector. A catalogue of named secret
// formats is matched behind a keyword prefilter, so clean strings cost one
// pass over their bytes and no allocation; values under secret-looking keys
// are masked whole.
//
//go:generate go tool -modfile=../../internal/tools/go.mod mdatagen metadata.yaml
package secretredactionprocessor
