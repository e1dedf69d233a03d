// Package deployattr names the attributes that the fastdeploy receiver puts
// on spans and log records, and that the deploy_metrics connector reads.
// OpenTelemetry semantic-convention names are used where one exists; the
// rest carry the fastdeploy. prefix.
package deployattr

// Resource attributes.
const (
	ServiceName = "service.name"
)

// Span attributes.
const (
	// SpanKind tells deployment, step, subprocess and task spans apart
	// without parsing names: one of the SpanKind* values.
	SpanKind = "fastdeploy.span.kind"

	DeploymentID          = "deployment.id"
	DeploymentName        = "deployment.name"
	DeploymentStatus      = "deployment.status" // semconv: succeeded | failed; else our status
	DeploymentEnvironment = "deployment.environment.name"
	PipelineName          = "cicd.pipeline.name"
	PipelineRunID         = "cicd.pipeline.run.id"
	PipelineResult        = "cicd.pipeline.result" // semconv: success | failure | cancellation | timeout | skip
	TaskName              = "cicd.pipeline.task.name"
	TaskRunResult         = "cicd.pipeline.task.run.result"
	VCSRevision           = "vcs.ref.head.revision"
	ErrorType             = "error.type"
	UserName              = "user.name"

	Origin       = "fastdeploy.origin"
	Status       = "fastdeploy.status" // our own word: success | failure | cancelled | timeout | skipped
	Context      = "fastdeploy.deployment.context"
	StepPosition = "fastdeploy.step.position"
	StepMessage  = "fastdeploy.step.message"
	// StepIgnored is true on a failed step the deployment carried on past
	// (continue_on_error); deploy_metrics does not count it as a failure.
	StepIgnored = "fastdeploy.step.ignored"
	// StepStderrTail holds the last lines of a failed step's stderr.
	StepStderrTail = "fastdeploy.step.stderr_tail"
	// ProcessExitSignal names the signal that ended a step's process;
	// semconv has no name for it.
	ProcessExitSignal = "fastdeploy.process.exit.signal"
	ProcessCommand    = "process.command_line"
	ProcessExitCode   = "process.exit.code"
	ProcessPID        = "process.pid"

	AnsibleTaskName     = "fastdeploy.ansible.task.name"
	AnsibleTaskPosition = "fastdeploy.ansible.task.position"
	AnsibleHost         = "fastdeploy.ansible.host"
	AnsibleChanged      = "fastdeploy.ansible.changed"
	AnsibleResult       = "fastdeploy.ansible.result"
	AnsibleIgnoreErrors = "fastdeploy.ansible.ignore_errors"
	AnsiblePlayName     = "fastdeploy.ansible.play.name"
	AnsibleTaskPath     = "fastdeploy.ansible.task.path"
	AnsibleHandler      = "fastdeploy.ansible.handler"
	AnsibleStats        = "fastdeploy.ansible.stats"
	AnsibleItem         = "fastdeploy.ansible.item"
	AnsibleItemIndex    = "fastdeploy.ansible.item.index"
)

// VCSRevisionTime is the commit time of VCSRevision (RFC 3339 or Unix
// seconds) on deployment spans; semconv has no name for it. The
// deploy_metrics connector derives DORA lead time from it.
const VCSRevisionTime = "fastdeploy.vcs.ref.head.revision.time"

// Values of SpanKind.
const (
	SpanKindDeployment  = "deployment"
	SpanKindStep        = "step"
	SpanKindSubprocess  = "subprocess"
	SpanKindAnsibleTask = "ansible.task"
	// ansible.posix.jsonl runs: playbook > play > task > one span per host.
	SpanKindAnsiblePlaybook = "ansible.playbook"
	SpanKindAnsiblePlay     = "ansible.play"
	SpanKindAnsibleHost     = "ansible.host"
)

// Log record attributes, in the ECS-like shape of the design review.
const (
	LogEventAction = "event.action"
	LogStepName    = "step.name"
	LogStepState   = "step.state"
	LogDurationMS  = "duration_ms"
)

// PipelineResultOf maps our status words onto the semconv
// cicd.pipeline.result enumeration.
func PipelineResultOf(status string) string {
	switch status {
	case "success":
		return "success"
	case "failure":
		return "failure"
	case "cancelled":
		return "cancellation"
	case "timeout":
		return "timeout"
	case "skipped":
		return "skip"
	}
	return status
}

// DeploymentStatusOf maps our status words onto semconv deployment.status,
// keeping words the convention has no value for.
func DeploymentStatusOf(status string) string {
	switch status {
	case "success":
		return "succeeded"
	case "failure":
		return "failed"
	}
	return status
}
