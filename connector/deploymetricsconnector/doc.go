// Package deploymetricsconnector turns deployment traces, and the lifecycle
// log records of the fastdeploy receiver, into the metrics a team charts and
// alerts on: deployment counts and durations, step durations and failures,
// deployments in flight, and the DORA time to restore and lead time.
//
//go:generate go tool -modfile=../../internal/tools/go.mod mdatagen metadata.yaml
package deploymetricsconnector
