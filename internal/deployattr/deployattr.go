// Package deployattr names the attributes that the fastdeploy receiver puts
// on spans and log records, and that the deploy_metrics connector reads.
// OpenTelemetry semantic-convention names come first; then the names
// Ansible users already query (community.general.opentelemetry's
// ansible.task.*); the rest carry the fastdeploy. prefix. The receiver's
// README maps every name to its convention, and a test keeps it complete.
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
	TaskRunID             = "cicd.pipeline.task.run.id"
	TaskRunResult         = "cicd.pipeline.task.run.result"
	VCSRevision           = "vcs.ref.head.revision"
	ErrorType             = "error.type"
	// On a failed step's exception event, and its log record.
	ExceptionType    = "exception.type"
	ExceptionMessage = "exception.message"
	UserName         = "user.name"

	Origin       = "fastdeploy.origin"
	Status       = "fastdeploy.status" // our own word: success | failure | cancelled | timeout | skipped
	Context      = "fastdeploy.deployment.context"
	StepPosition = "fastdeploy.step.position"
	StepMessage  = "fastdeploy.step.message"
	// StepIgnored is true on a failed step the deployment carried on past
	// (continue_on_error); deploy_metrics does not count it as a failure.
	StepIgnored = "fastdeploy.step.ignored"
	// ProcessExitSignal names the signal that ended a step's process;
	// semconv has no name for it.
	ProcessExitSignal = "fastdeploy.process.exit.signal"
	ProcessCommand    = "process.command_line"
	ProcessExitCode   = "process.exit.code"
	ProcessPID        = "process.pid"

	// The names and value formats of community.general.opentelemetry,
	// on the spans that mean what its spans mean: one task on one host.
	//
	// AnsibleTaskName is "[host] play: task" (AnsibleTaskLabel).
	AnsibleTaskName = "ansible.task.name"
	AnsibleHost     = "ansible.task.host.name"
	// AnsibleHostStatus is ok | failed | ignored | skipped | unreachable.
	AnsibleHostStatus = "ansible.task.host.status"
	// AnsibleResultCode is the module's rc, 0 when it has none.
	AnsibleResultCode = "ansible.task.result"
	AnsibleModule     = "ansible.task.module"
	AnsibleMessage    = "ansible.task.message"
	// AnsibleArgsName and AnsibleArgsValue are parallel string arrays.
	AnsibleArgsName  = "ansible.task.args.name"
	AnsibleArgsValue = "ansible.task.args.value"

	AnsibleTaskPosition = "fastdeploy.ansible.task.position"
	AnsibleChanged      = "fastdeploy.ansible.changed"
	// AnsibleResult is the whole Ansible result as a map; the callback's
	// ansible.task.result is only its rc.
	AnsibleResult    = "fastdeploy.ansible.result"
	AnsiblePlayName  = "fastdeploy.ansible.play.name"
	AnsibleTaskPath  = "fastdeploy.ansible.task.path"
	AnsibleHandler   = "fastdeploy.ansible.handler"
	AnsibleStats     = "fastdeploy.ansible.stats"
	AnsibleItem      = "fastdeploy.ansible.item"
	AnsibleItemIndex = "fastdeploy.ansible.item.index"
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
	LogEventID     = "event.id" // the event's delivery id
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

// AnsibleTaskLabel is ansible.task.name as community.general.opentelemetry
// writes it, "[host] play: task", so searches saved for that callback
// match; the bare task name when host or play is not known.
func AnsibleTaskLabel(host, play, task string) string {
	if host == "" || play == "" {
		return task
	}
	return "[" + host + "] " + play + ": " + task
}

// AnsibleHostStatusOf maps our task states onto the words of
// ansible.task.host.status; a failure the play carried on from is
// "ignored", as the callback reports ignore_errors.
func AnsibleHostStatusOf(state string, ignored bool) string {
	switch state {
	case "success":
		return "ok"
	case "failure":
		if ignored {
			return "ignored"
		}
		return "failed"
	}
	return state // skipped, unreachable
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
