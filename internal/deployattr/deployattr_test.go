package deployattr

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAnsibleTaskLabel(t *testing.T) {
	for _, tc := range []struct {
		host, play, task, want string
	}{
		{"web1", "deploy shop", "run migrations", "[web1] deploy shop: run migrations"},
		{"db-1.internal", "p", "", "[db-1.internal] p: "},
		// Without host or play there is no label to match: the bare name.
		{"", "deploy shop", "run migrations", "run migrations"},
		{"web1", "", "run migrations", "run migrations"},
		{"", "", "", ""},
	} {
		assert.Equal(t, tc.want, AnsibleTaskLabel(tc.host, tc.play, tc.task), "%+v", tc)
	}
}

func TestAnsibleHostStatusOf(t *testing.T) {
	for _, tc := range []struct {
		state   string
		ignored bool
		want    string
	}{
		{"success", false, "ok"},
		{"success", true, "ok"}, // ignore_errors on a task that passed
		{"failure", false, "failed"},
		{"failure", true, "ignored"},
		{"skipped", false, "skipped"},
		{"unreachable", false, "unreachable"},
		{"unreachable", true, "unreachable"}, // ignore_errors does not cover unreachable hosts
		{"weird", false, "weird"},
	} {
		assert.Equal(t, tc.want, AnsibleHostStatusOf(tc.state, tc.ignored), "%+v", tc)
	}
}
