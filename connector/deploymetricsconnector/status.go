package deploymetricsconnector

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Status label values. Every source's words map onto these few, so status
// never adds cardinality.
const (
	statusSuccess   = "success"
	statusFailure   = "failure"
	statusCancelled = "cancelled"
	statusTimeout   = "timeout"
	statusSkipped   = "skipped"
	statusUnknown   = "unknown"
)

// statusWord maps fastdeploy, cicd.pipeline.result,
// cicd.pipeline.task.run.result and deployment.status words; "" means
// unrecognised, so the next source is tried.
func statusWord(v string) string {
	switch v {
	case "success", "succeeded", "ok":
		return statusSuccess
	case "failure", "failed", "error":
		return statusFailure
	case "cancelled", "canceled", "cancellation":
		return statusCancelled
	case "timeout", "timed_out":
		return statusTimeout
	case "skipped", "skip":
		return statusSkipped
	}
	if lower := strings.ToLower(v); lower != v {
		return statusWord(lower)
	}
	return ""
}

func spanStatus(attrs pcommon.Map, keys []string, st ptrace.Status) string {
	for _, k := range keys {
		if v, ok := attrs.Get(k); ok {
			if w := statusWord(v.Str()); w != "" {
				return w
			}
		}
	}
	switch st.Code() {
	case ptrace.StatusCodeOk:
		return statusSuccess
	case ptrace.StatusCodeError:
		return statusFailure
	}
	return statusUnknown
}

// failing tells whether a deployment status opens or extends a DORA
// failure streak.
func failing(status string) bool {
	return status == statusFailure || status == statusTimeout
}
