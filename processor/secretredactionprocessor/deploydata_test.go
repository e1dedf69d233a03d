package secretredactionprocessor

import (
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployattr"
)

// Fake secrets planted in the test telemetry. None is a real credential.
var planted = []string{
	"ghs_16C7e42F292c6912E7710c838347Ae178B4a",
	"Sup3r-S3cret-DB-pw!",
	"django-insecure-8s7d6f5g4h3j2k1l0",
	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	"glpat-Ab3dEf6hIj9kLm2nOp5q",
	"T01234567/B01234567/abcdefghijABCDEFGHIJklmn",
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJkZXBsb3kifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
	"MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
	"r3dis-p4ss",
	"hvs.CAESIJ7aF8dKq2xYw3LmN5pR9sT1uV4wX6yZ",
	"xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
	"npm_abcdefghijklmnopqrstuvwxyz0123456789",
}

const pemBlock = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----"

// Things that must survive untouched.
var keptValues = []string{
	"3f786850e387550fdab836ed7e6dc881de23001b",
	"6f1c2b1e-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
	"sha256:9b2c8f6a4e1d3c5b7a9f0e2d4c6b8a0f1e3d5c7b9a0f2e4d6c8b0a1f3e5d7c9b",
	"Set database password",
	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl deploy@ci",
}

var baseTime = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// deploymentTraces builds one deployment trace as the fastdeploy receiver
// emits it: a deployment span, steps, a subprocess and Ansible task spans
// whose results carry long, mostly clean output. withSecrets plants the
// fake secrets; tasks sets the size.
func deploymentTraces(tasks int, withSecrets bool) ptrace.Traces {
	secret := func(s, clean string) string {
		if withSecrets {
			return s
		}
		return clean
	}
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(deployattr.ServiceName, "checkout")
	rs.Resource().Attributes().PutStr("vcs.repository.url.full",
		secret("https://x-access-token:"+planted[0]+"@github.com/acme/checkout.git", "https://github.com/acme/checkout.git"))
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("github.com/fastdeploy/otelcol-fastdeploy/receiver/fastdeployreceiver")
	ss.Scope().Attributes().PutStr("fastdeploy.origin", "ci")

	traceID := pcommon.TraceID([16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36})
	root := ss.Spans().AppendEmpty()
	root.SetTraceID(traceID)
	root.SetSpanID(pcommon.SpanID([8]byte{1, 2, 3, 4, 5, 6, 7, 8}))
	root.SetName("deploy checkout")
	root.SetStartTimestamp(pcommon.NewTimestampFromTime(baseTime))
	root.SetEndTimestamp(pcommon.NewTimestampFromTime(baseTime.Add(5 * time.Minute)))
	a := root.Attributes()
	a.PutStr(deployattr.DeploymentID, keptValues[1])
	a.PutStr(deployattr.DeploymentStatus, "failed")
	a.PutStr(deployattr.DeploymentEnvironment, "production")
	a.PutStr(deployattr.VCSRevision, keptValues[0])
	a.PutStr(deployattr.UserName, "alice")
	a.PutStr(deployattr.SpanKind, deployattr.SpanKindDeployment)
	ctx := a.PutEmptyMap(deployattr.Context)
	env := ctx.PutEmptyMap("env")
	env.PutStr("database_password", secret(planted[1], ""))
	env.PutStr("SECRET_KEY", secret(planted[2], ""))
	env.PutStr("LOG_LEVEL", "info")
	env.PutInt("token_ttl", 3600)
	env.PutBool("password_required", true)
	ctx.PutStr("notify", secret("https://hooks.slack.com/services/"+planted[5], "https://chat.example.com/deploys"))
	ctx.PutStr("image", "registry.example.com/checkout@"+keptValues[2])
	root.Status().SetCode(ptrace.StatusCodeError)
	root.Status().SetMessage(secret("rollout failed: registry refused token "+planted[4], "rollout failed: registry refused"))

	step := ss.Spans().AppendEmpty()
	step.SetTraceID(traceID)
	step.SetSpanID(pcommon.SpanID([8]byte{2, 2, 3, 4, 5, 6, 7, 8}))
	step.SetParentSpanID(root.SpanID())
	step.SetName(secret("migrate --password="+planted[8], "migrate"))
	step.Attributes().PutStr(deployattr.StepMessage, secret("DATABASE_URL=postgres://app:"+planted[8]+"@db.internal:5432/app ./manage.py migrate", "./manage.py migrate"))
	step.Attributes().PutStr(deployattr.SpanKind, deployattr.SpanKindStep)
	ev := step.Events().AppendEmpty()
	ev.SetName("exception")
	ev.Attributes().PutStr("exception.message", secret("vault login failed with "+planted[9], "vault login failed"))
	link := step.Links().AppendEmpty()
	link.SetTraceID(traceID)
	link.Attributes().PutStr("http.request.header.authorization", secret("Bearer "+planted[6], ""))

	stdoutClean := strings.Repeat("Collecting requirements ... done\nRunning migrations: applying checkout.0042_add_index... OK\n", 12)
	for i := range tasks {
		task := ss.Spans().AppendEmpty()
		task.SetTraceID(traceID)
		task.SetSpanID(pcommon.SpanID([8]byte{3, byte(i), 3, 4, 5, 6, 7, 8}))
		task.SetParentSpanID(step.SpanID())
		name := "Install packages"
		if i%5 == 1 {
			name = keptValues[3]
		}
		task.SetName(name)
		ta := task.Attributes()
		ta.PutStr(deployattr.AnsibleTaskName, name)
		ta.PutStr(deployattr.AnsibleHost, fmt.Sprintf("web-%02d", i%4))
		ta.PutBool(deployattr.AnsibleChanged, i%2 == 0)
		ta.PutStr(deployattr.SpanKind, deployattr.SpanKindAnsibleTask)
		res := ta.PutEmptyMap(deployattr.AnsibleResult)
		planting := withSecrets && i%10 == 0
		cmd := "systemctl restart checkout"
		stdout := stdoutClean
		if planting {
			cmd = "curl -fsS -H 'Authorization: Bearer " + planted[6] + "' https://api.internal/deploy"
			stdout = stdoutClean + "writing key file\n" + pemBlock + "\nexport AWS_SECRET_ACCESS_KEY=" + planted[3] + "\n"
		}
		res.PutStr("cmd", cmd)
		res.PutStr("stdout", stdout)
		res.PutStr("stderr", "")
		res.PutInt("rc", 0)
		lines := res.PutEmptySlice("stdout_lines")
		for _, l := range strings.SplitN(stdout, "\n", 6)[:5] {
			lines.AppendEmpty().SetStr(l)
		}
		facts := res.PutEmptyMap("ansible_facts").PutEmptyMap("ansible_env")
		facts.PutStr("HOME", "/home/deploy")
		facts.PutStr("PWD", "/home/deploy/checkout")
		facts.PutStr("PATH", "/usr/local/bin:/usr/bin:/bin")
		facts.PutStr("SSH_AUTHORIZED_KEY", keptValues[4])
		if planting {
			facts.PutStr("AWS_SECRET_ACCESS_KEY", planted[3])
			facts.PutStr("SLACK_BOT", planted[10])
		}
		args := res.PutEmptyMap("invocation").PutEmptyMap("module_args")
		args.PutStr("name", name)
		args.PutStr("state", "present")
		if planting {
			args.PutStr("login_password", planted[1])
			results := res.PutEmptySlice("results")
			item := results.AppendEmpty().SetEmptyMap()
			item.PutStr("item", "npm")
			item.PutStr("msg", "configured registry with //registry.npmjs.org/:_authToken="+planted[11])
		}
	}
	return td
}

func deploymentLogs(n int, withSecrets bool) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(deployattr.ServiceName, "checkout")
	sl := rl.ScopeLogs().AppendEmpty()
	for i := range n {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(baseTime.Add(time.Duration(i) * time.Second)))
		lr.Attributes().PutStr(deployattr.LogEventAction, "step.finished")
		lr.Attributes().PutStr(deployattr.DeploymentID, keptValues[1])
		lr.Attributes().PutStr(deployattr.LogStepName, "migrate")
		lr.Attributes().PutInt(deployattr.LogDurationMS, int64(1200+i))
		body := fmt.Sprintf("step migrate finished in %dms on web-%02d, commit %s", 1200+i, i%4, keptValues[0])
		if withSecrets && i%10 == 0 {
			body += "; env: SECRET_KEY=" + planted[2] + " REDIS_URL=redis://:" + planted[8] + "@cache:6379/0"
		}
		lr.Body().SetStr(body)
	}
	if withSecrets {
		lr := sl.LogRecords().AppendEmpty()
		m := lr.Body().SetEmptyMap()
		m.PutStr("message", "deploy config loaded")
		cfg := m.PutEmptyMap("config")
		cfg.PutStr("api_key", planted[7])
		cfg.PutStr("vault_token", planted[9])
		cfg.PutEmptySlice("tokens").AppendEmpty().SetStr("ghs token " + planted[0])
		lr.SetEventName("deploy.config")
	}
	return ld
}

func deploymentMetrics(withSecrets bool) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(deployattr.ServiceName, "checkout")
	sm := rm.ScopeMetrics().AppendEmpty()
	m := sm.Metrics().AppendEmpty()
	m.SetName("deployments")
	dp := m.SetEmptySum().DataPoints().AppendEmpty()
	dp.SetIntValue(3)
	dp.Attributes().PutStr("vcs.repository.url.full", "https://github.com/acme/checkout.git")
	if withSecrets {
		dp.Attributes().PutStr("db.connection", "mysql://root:"+planted[1]+"@db:3306/app")
	}
	h := sm.Metrics().AppendEmpty()
	h.SetName("deployment.duration")
	hdp := h.SetEmptyHistogram().DataPoints().AppendEmpty()
	hdp.SetCount(1)
	hdp.SetSum(300)
	hdp.Attributes().PutStr(deployattr.DeploymentEnvironment, "production")
	ex := hdp.Exemplars().AppendEmpty()
	ex.SetDoubleValue(300)
	if withSecrets {
		ex.FilteredAttributes().PutStr("auth_token", planted[4])
	}
	return md
}
