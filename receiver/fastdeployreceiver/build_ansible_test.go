package fastdeployreceiver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/secrets"
)

func resultMap(t *testing.T, m map[string]any) pcommon.Map {
	t.Helper()
	out := pcommon.NewMap()
	require.NoError(t, out.FromRaw(m))
	return out
}

func TestAnsibleMessage(t *testing.T) {
	for _, tc := range []struct {
		name, status, errMsg string
		result               map[string]any
		want                 string
	}{
		{"ok", "ok", "", map[string]any{"msg": "all fine"}, "success"},
		{"skip reason", "skipped", "", map[string]any{"skip_reason": "Conditional result was False"}, "Conditional result was False"},
		{"skipped without reason", "skipped", "", map[string]any{}, "skipped"},
		{"exception's last line first", "failed", "MODULE FAILURE", map[string]any{"exception": "Traceback:\n  File x\nKeyError: 'db'\n"}, "KeyError: 'db'"},
		{"error message", "failed", "non-zero return code", map[string]any{"msg": "other"}, "non-zero return code"},
		{"msg when no error message", "ignored", "", map[string]any{"msg": "rc 1"}, "rc 1"},
		{"nothing known", "unreachable", "", map[string]any{}, "unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, ansibleMessage(tc.status, tc.errMsg, resultMap(t, tc.result)))
		})
	}
}

func TestResultCode(t *testing.T) {
	for _, tc := range []struct {
		result map[string]any
		want   int64
	}{
		{map[string]any{"rc": 3}, 3},
		{map[string]any{"rc": 2.0}, 2},
		{map[string]any{"rc": "3"}, 0}, // not a number: the callback's default
		{map[string]any{"results": []any{map[string]any{"rc": 1}}}, 0},
		{map[string]any{}, 0},
	} {
		assert.Equal(t, tc.want, resultCode(resultMap(t, tc.result)), "%v", tc.result)
	}
}

func TestModuleArgs(t *testing.T) {
	secretName := "login_password"
	require.True(t, secrets.IsSecretKey(secretName))
	require.False(t, secrets.IsSecretKey("dest"))
	fake := "fake-" + "value-" + "for-test"
	a := pcommon.NewMap()
	putModuleArgs(a, resultMap(t, map[string]any{"invocation": map[string]any{"module_args": map[string]any{
		"dest": "/etc/app.conf", "force": true, "backup": false, "mode": nil, "retries": 3,
		"ratio": 0.5, "opts": map[string]any{"a": 1}, secretName: fake, "password_hint": "",
	}}}))
	names, _ := a.Get("ansible.task.args.name")
	values, _ := a.Get("ansible.task.args.value")
	require.Equal(t, names.Slice().Len(), values.Slice().Len())
	got := map[string]string{}
	for i := range names.Slice().Len() {
		got[names.Slice().At(i).Str()] = values.Slice().At(i).Str()
	}
	assert.Equal(t, map[string]string{
		"dest": "/etc/app.conf", "force": "True", "backup": "False", "retries": "3", "ratio": "0.5",
		"opts": `{"a":1}`, secretName: secretArgMask, "password_hint": "",
	}, got, "null options left out; a secret-looking name's value masked, an empty one kept empty")

	for name, result := range map[string]map[string]any{
		"no invocation (no_log)": {"censored": "the output has been hidden"},
		"only unset options":     {"invocation": map[string]any{"module_args": map[string]any{"chdir": nil}}},
		"module_args not a map":  {"invocation": map[string]any{"module_args": "x"}},
		"invocation not a map":   {"invocation": "x"},
		"empty module_args":      {"invocation": map[string]any{"module_args": map[string]any{}}},
	} {
		a := pcommon.NewMap()
		putModuleArgs(a, resultMap(t, result))
		assert.Equal(t, 0, a.Len(), name)
	}
}

func TestPutAnsibleTaskSkipsFactArgs(t *testing.T) {
	a := pcommon.NewMap()
	putAnsibleTask(a, "[h] p: Gathering Facts", "h", "ok", "", resultMap(t, map[string]any{
		"action":     "ansible.builtin.gather_facts",
		"invocation": map[string]any{"module_args": map[string]any{"gather_subset": []any{"all"}}},
	}))
	_, ok := a.Get("ansible.task.args.name")
	assert.False(t, ok, "as the callback, no arguments for fact gathering")
	v, _ := a.Get("ansible.task.module")
	assert.Equal(t, "ansible.builtin.gather_facts", v.Str())
	v, _ = a.Get("ansible.task.result")
	assert.Equal(t, int64(0), v.Int())
}
