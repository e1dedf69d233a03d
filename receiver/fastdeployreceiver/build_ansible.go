package fastdeployreceiver

import (
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deployattr"
	"github.com/fastdeploy/otelcol-fastdeploy/internal/secrets"
)

// putAnsibleTask sets community.general.opentelemetry's attributes of one
// task on one host, with that callback's value formats, so searches saved
// for it find our spans. rc, the module and its arguments are read from
// the Ansible result (before it moves onto the span).
func putAnsibleTask(a pcommon.Map, label, host, hostStatus, errMsg string, result pcommon.Map) {
	a.PutStr(deployattr.AnsibleTaskName, label)
	putStrIf(a, deployattr.AnsibleHost, host)
	a.PutStr(deployattr.AnsibleHostStatus, hostStatus)
	a.PutInt(deployattr.AnsibleResultCode, resultCode(result))
	module := ""
	if v, ok := result.Get("action"); ok && v.Type() == pcommon.ValueTypeStr {
		module = v.Str()
	}
	putStrIf(a, deployattr.AnsibleModule, module)
	a.PutStr(deployattr.AnsibleMessage, ansibleMessage(hostStatus, errMsg, result))
	if !strings.Contains(module, "gather_facts") {
		putModuleArgs(a, result)
	}
}

// resultCode is the module's rc, 0 when it has none (loops, most modules),
// as the callback reports it.
func resultCode(result pcommon.Map) int64 {
	v, ok := result.Get("rc")
	if !ok {
		return 0
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int()
	case pcommon.ValueTypeDouble:
		return int64(v.Double())
	}
	return 0
}

// ansibleMessage is the callback's ansible.task.message: "success", the
// skip reason, or the error (the last line of a module exception first).
// Unlike the callback, an ignored failure keeps its error, not "success".
func ansibleMessage(hostStatus, errMsg string, result pcommon.Map) string {
	str := func(k string) string {
		if v, ok := result.Get(k); ok && v.Type() == pcommon.ValueTypeStr {
			return strings.TrimSpace(v.Str())
		}
		return ""
	}
	switch hostStatus {
	case "ok":
		return "success"
	case "skipped":
		return nonEmpty(str("skip_reason"), "skipped")
	}
	if exc := str("exception"); exc != "" {
		return exc[strings.LastIndexByte(exc, '\n')+1:]
	}
	if errMsg = strings.TrimSpace(errMsg); errMsg != "" {
		return errMsg
	}
	return nonEmpty(str("msg"), hostStatus)
}

// secretArgMask stands for an argument whose name looks secret: the two
// parallel arrays hide the name from key-based redaction downstream.
const secretArgMask = "[REDACTED:" + secrets.KeyRuleName + "]"

// putModuleArgs sets ansible.task.args.name and .value from the module's
// invocation; options left unset (null) are not arguments the task gave.
// Ansible leaves out the invocation of no_log tasks, as the callback does
// their arguments.
func putModuleArgs(a pcommon.Map, result pcommon.Map) {
	inv, ok := result.Get("invocation")
	if !ok || inv.Type() != pcommon.ValueTypeMap {
		return
	}
	args, ok := inv.Map().Get("module_args")
	if !ok || args.Type() != pcommon.ValueTypeMap || args.Map().Len() == 0 {
		return
	}
	names := a.PutEmptySlice(deployattr.AnsibleArgsName)
	values := a.PutEmptySlice(deployattr.AnsibleArgsValue)
	for k, v := range args.Map().All() {
		text, ok := argText(v)
		if !ok {
			continue
		}
		if text != "" && secrets.IsSecretKey(k) {
			text = secretArgMask
		}
		names.AppendEmpty().SetStr(k)
		values.AppendEmpty().SetStr(text)
	}
	if names.Len() == 0 {
		a.Remove(deployattr.AnsibleArgsName)
		a.Remove(deployattr.AnsibleArgsValue)
	}
}

// argText renders an argument as the callback's str() does for scalars
// (True, False, 5); maps and lists as JSON.
func argText(v pcommon.Value) (string, bool) {
	switch v.Type() {
	case pcommon.ValueTypeEmpty:
		return "", false
	case pcommon.ValueTypeStr:
		return v.Str(), true
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return "True", true
		}
		return "False", true
	case pcommon.ValueTypeInt:
		return strconv.FormatInt(v.Int(), 10), true
	case pcommon.ValueTypeDouble:
		return strconv.FormatFloat(v.Double(), 'g', -1, 64), true
	}
	return v.AsString(), true
}
