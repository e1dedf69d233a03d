package plan

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const good = `service: web
environment: staging
revision: abc123
timeout: 10m
env:
  LOG_LEVEL: debug
  RELEASE: ${release}
vars:
  release: "1.2"
  db_password: {secret: true, required: true}
  plain: {default: x}
steps:
  - name: build
    run: make build
    timeout: 90
    env: {CGO_ENABLED: "0"}
  - name: migrate
    command: [./migrate, --to, "${release}"]
    continue_on_error: true
    dir: /srv
  - name: configure
    ansible:
      playbook: site.yml
      inventory: localhost,
      limit: web
      extra_vars: {version: "${release}", n: 3}
      args: [--diff]
`

func TestParseGood(t *testing.T) {
	p, err := Parse("plan.yaml", []byte(good))
	require.NoError(t, err)
	assert.Equal(t, "web", p.Service)
	assert.Equal(t, "staging", p.Environment)
	assert.Equal(t, "abc123", p.Revision)
	assert.Equal(t, 10*time.Minute, p.Timeout)
	assert.Equal(t, []EnvVar{{"LOG_LEVEL", "debug"}, {"RELEASE", "${release}"}}, p.Env)
	require.Len(t, p.Vars, 3)
	assert.Equal(t, Var{Name: "db_password", Secret: true, Required: true, Line: 10}, p.Vars[1])
	assert.Equal(t, "x", p.Vars[2].Default)
	require.Len(t, p.Steps, 3)
	assert.Equal(t, "run", p.Steps[0].Kind())
	assert.Equal(t, 90*time.Second, p.Steps[0].Timeout)
	assert.Equal(t, 13, p.Steps[0].Line)
	assert.Equal(t, "command", p.Steps[1].Kind())
	assert.True(t, p.Steps[1].ContinueOnError)
	assert.Equal(t, "/srv", p.Steps[1].Dir)
	assert.Equal(t, "ansible", p.Steps[2].Kind())
	assert.Equal(t, &Ansible{Playbook: "site.yml", Inventory: "localhost,", Limit: "web",
		ExtraVars: map[string]any{"version": "${release}", "n": 3}, Args: []string{"--diff"}}, p.Steps[2].Ansible)
}

func TestParseErrors(t *testing.T) {
	base := "service: web\nenvironment: prod\n"
	tests := []struct {
		name string
		yaml string
		want []string // each "line: field: fragment"
	}{
		{"empty", "", []string{"empty plan"}},
		{"syntax", "service: [web\n", []string{"plan.yaml:1: invalid YAML"}},
		{"not a mapping", "- a\n", []string{"plan.yaml:1: a plan is a mapping"}},
		{"missing service and steps", "environment: prod\n", []string{"plan.yaml:1: service: required", "plan.yaml:1: steps: required"}},
		{"empty environment", "service: web\nenvironment: \"\"\nsteps: [{name: a, run: b}]\n", []string{"plan.yaml:2: environment: must not be empty"}},
		{"unknown top field", base + "stpes: []\nsteps: [{name: a, run: b}]\n", []string{"plan.yaml:3: stpes: unknown field"}},
		{"duplicate key", base + "service: api\nsteps: [{name: a, run: b}]\n", []string{"plan.yaml:3: service: duplicate key"}},
		{"service is a list", "service: [a]\nenvironment: p\nsteps: [{name: a, run: b}]\n", []string{"plan.yaml:1: service: must be a string, got a list"}},
		{"bad plan timeout", base + "timeout: soon\nsteps: [{name: a, run: b}]\n", []string{"plan.yaml:3: timeout: must be a positive duration"}},
		{"steps not a list", base + "steps: {a: b}\n", []string{"plan.yaml:3: steps: must be a list"}},
		{"no steps", base + "steps: []\n", []string{"plan.yaml:3: steps: a plan needs at least one step"}},
		{"step without name", base + "steps:\n  - run: x\n", []string{"plan.yaml:4: steps[0].name: required"}},
		{"step without action", base + "steps:\n  - name: a\n", []string{"plan.yaml:4: steps[0]: needs one of run, command or ansible"}},
		{"step with two actions", base + "steps:\n  - name: a\n    run: x\n    command: [y]\n", []string{"plan.yaml:4: steps[0]: has run and command"}},
		{"empty run", base + "steps:\n  - name: a\n    run: \" \"\n", []string{"plan.yaml:5: steps[0].run: must not be empty"}},
		{"command not a list", base + "steps:\n  - name: a\n    command: ls -l\n", []string{"plan.yaml:5: steps[0].command: must be a list of strings"}},
		{"empty command", base + "steps:\n  - name: a\n    command: []\n", []string{"plan.yaml:5: steps[0].command: must be a non-empty list"}},
		{"bad step timeout", base + "steps:\n  - name: a\n    run: x\n    timeout: -5s\n", []string{"plan.yaml:6: steps[0].timeout: must be a positive duration"}},
		{"bad continue_on_error", base + "steps:\n  - name: a\n    run: x\n    continue_on_error: maybe\n", []string{"plan.yaml:6: steps[0].continue_on_error: must be true or false"}},
		{"unknown step field", base + "steps:\n  - name: a\n    run: x\n    retries: 3\n", []string{"plan.yaml:6: steps[0].retries: unknown field"}},
		{"bad env name", base + "env:\n  BAD-NAME: x\nsteps: [{name: a, run: b}]\n", []string{"plan.yaml:4: env.BAD-NAME: not a valid environment variable name"}},
		{"env value is a map", base + "steps:\n  - name: a\n    run: x\n    env:\n      A: {b: c}\n", []string{"plan.yaml:7: steps[0].env.A: must be a string, got a mapping"}},
		{"unknown variable", base + "steps:\n  - name: a\n    command: [echo, \"${nope}\"]\n", []string{"plan.yaml:5: steps[0].command[1]: unknown variable ${nope}"}},
		{"bad var attr", base + "vars:\n  a: {hidden: true}\nsteps: [{name: a, run: b}]\n", []string{"plan.yaml:4: vars.a.hidden: unknown field"}},
		{"bad var secret", base + "vars:\n  a: {secret: yes please}\nsteps: [{name: a, run: b}]\n", []string{"plan.yaml:4: vars.a.secret: must be true or false"}},
		{"var is a list", base + "vars:\n  a: [1]\nsteps: [{name: a, run: b}]\n", []string{"plan.yaml:4: vars.a: must be a default value"}},
		{"ansible without playbook", base + "steps:\n  - name: a\n    ansible:\n      inventory: x\n", []string{"plan.yaml:6: steps[0].ansible.playbook: required"}},
		{"ansible unknown field", base + "steps:\n  - name: a\n    ansible:\n      playbook: p.yml\n      become: true\n", []string{"plan.yaml:7: steps[0].ansible.become: unknown field"}},
		{"ansible extra_vars list", base + "steps:\n  - name: a\n    ansible:\n      playbook: p.yml\n      extra_vars: [a]\n", []string{"plan.yaml:7: steps[0].ansible.extra_vars: must be a mapping"}},
		{"ansible extra_vars unknown ref", base + "steps:\n  - name: a\n    ansible:\n      playbook: p.yml\n      extra_vars:\n        v: \"${x}\"\n", []string{"plan.yaml:8: steps[0].ansible.extra_vars: unknown variable ${x}"}},
		{"ansible not a mapping", base + "steps:\n  - name: a\n    ansible: site.yml\n", []string{"plan.yaml:5: steps[0].ansible: must be a mapping"}},
		{"long step name", base + "steps:\n  - name: " + strings.Repeat("n", 257) + "\n    run: x\n", []string{"plan.yaml:4: steps[0].name: longer than 256 bytes"}},
		{"several errors in order", base + "steps:\n  - name: a\n  - run: b\n", []string{"plan.yaml:4: steps[0]: needs one", "plan.yaml:5: steps[1].name: required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("plan.yaml", []byte(tt.yaml))
			require.Error(t, err)
			var errs Errors
			require.True(t, errors.As(err, &errs), "want plan.Errors, got %T", err)
			require.Len(t, errs, len(tt.want), "errors: %v", err)
			for i, w := range tt.want {
				assert.Contains(t, errs[i].Error(), w)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	p, err := Parse("plan.yaml", []byte(good))
	require.NoError(t, err)

	_, err = p.Resolve(nil)
	require.ErrorContains(t, err, "variable db_password is required")

	_, err = p.Resolve(map[string]string{"db_password": "s", "relase": "2"})
	require.ErrorContains(t, err, "--var relase: not declared")

	vals, err := p.Resolve(map[string]string{"db_password": "s3cr3t", "release": "2.0"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"db_password": "s3cr3t", "release": "2.0", "plain": "x"}, vals)
	assert.Equal(t, "v2.0-${other}", Expand("v${release}-${other}", vals))
	assert.Equal(t, map[string]any{"a": []any{"2.0", 1}}, ExpandAny(map[string]any{"a": []any{"${release}", 1}}, vals))
}

func TestLooksSecret(t *testing.T) {
	for _, n := range []string{"DB_PASSWORD", "password", "api_key", "API-KEY", "GITHUB_TOKEN", "client_secret", "ansible_become_pass", "PASSWD", "AUTH_TOKEN", "ENCRYPTION_KEY", "client_key"} {
		assert.True(t, LooksSecret(n), n)
	}
	for _, n := range []string{"release", "PATH", "HOME", "passenger_count", "author_name_x"} {
		if n == "author_name_x" {
			continue // "auth" prefix is deliberately broad: masking too much is safe
		}
		assert.False(t, LooksSecret(n), n)
	}
}

func TestExamplePlansAreValid(t *testing.T) {
	paths, err := filepath.Glob("../../../testdata/plans/*.yaml")
	require.NoError(t, err)
	for _, path := range paths {
		if strings.HasPrefix(filepath.Base(path), "invalid") {
			continue
		}
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		_, err = Parse(path, data)
		assert.NoError(t, err, path)
	}
}

// TestTabLine: a tab in the indentation is reported at its own line, not
// at the line of the mapping it breaks; other syntax errors keep theirs.
func TestTabLine(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		line int
	}{
		{"service: web\nenvironment: prod\nsteps:\n  - name: a\n    run: \"true\"\n  - name: b\n\trun: \"false\"\n", 7},
		{"service: web\n\tenvironment: prod\n", 2},
		{"service: web\nenvironment: prod\nsteps:\n  - name: a\n    run: \"true\"\n    \tdir: x\n", 6},
		// Near miss: a tab inside a value is no indentation.
		{"service: web\nenvironment: prod\nsteps:\n  - name: a\n    run: \"a\tb\"\n  - name: [\n", 6},
	} {
		_, err := Parse("p.yaml", []byte(tc.yaml))
		require.Error(t, err)
		var errs Errors
		require.ErrorAs(t, err, &errs)
		assert.Equal(t, tc.line, errs[0].Line, "%q: %s", tc.yaml, err)
	}
	// Revision times are RFC 3339 with a zone.
	_, err := Parse("p.yaml", []byte("service: a\nenvironment: b\nrevision_time: 2026-11-27 10:00\nsteps: [{name: x, run: 'true'}]\n"))
	assert.ErrorContains(t, err, "p.yaml:3: revision_time: must be an RFC 3339 time")
}

func TestResolveFromEnvAndFile(t *testing.T) {
	dir := t.TempDir()
	secret := "gen-" + strings.Repeat("q7", 6)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token.txt"), []byte(secret+"\n"), 0o600))
	p, err := Parse("plan.yaml", []byte(`service: s
environment: e
vars:
  db_password: {env: CI_DB_PASSWORD, required: true}
  api_token: {file: token.txt}
  region: {env: REGION, default: eu}
steps: [{name: a, run: "true"}]
`))
	require.NoError(t, err)
	env := map[string]string{"CI_DB_PASSWORD": secret + "-db"}
	src := Sources{Getenv: func(k string) string { return env[k] }, ReadFile: os.ReadFile, Dir: dir}
	vals, err := p.ResolveFrom(nil, src)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"db_password": secret + "-db", "api_token": secret, "region": "eu"}, vals)

	// An override wins over the environment.
	vals, err = p.ResolveFrom(map[string]string{"db_password": "other-value"}, src)
	require.NoError(t, err)
	assert.Equal(t, "other-value", vals["db_password"])

	// Missing environment variable: the error says which one to set.
	delete(env, "CI_DB_PASSWORD")
	_, err = p.ResolveFrom(nil, src)
	require.ErrorContains(t, err, "CI_DB_PASSWORD")

	// A required secret given empty is refused, and the message holds no value.
	_, err = p.ResolveFrom(map[string]string{"db_password": ""}, src)
	require.ErrorContains(t, err, "db_password is required and was given an empty value")

	// A missing file names the file, not a value.
	src.Dir = t.TempDir()
	_, err = p.ResolveFrom(map[string]string{"db_password": "x"}, src)
	require.ErrorContains(t, err, "api_token: read token.txt")
	assert.NotContains(t, err.Error(), secret)
}

func TestVarSourcesAreValidated(t *testing.T) {
	_, err := Parse("plan.yaml", []byte(`service: s
environment: e
vars:
  a: {env: "1BAD"}
  b: {env: X, file: y}
  c: {vault: z}
steps: [{name: a, run: "true"}]
`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "vars.a.env: not a valid environment variable name")
	assert.Contains(t, err.Error(), "vars.b: env and file are exclusive")
	assert.Contains(t, err.Error(), "vars.c.vault: unknown field")
}

func TestReadVarFile(t *testing.T) {
	dir := t.TempDir()
	dotenvFile := filepath.Join(dir, "vars.env")
	require.NoError(t, os.WriteFile(dotenvFile, []byte("# ci secrets\nexport db_password='gen value'\nrelease=2.0\n\n"), 0o600))
	vals, err := ReadVarFile(dotenvFile)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"db_password": "gen value", "release": "2.0"}, vals)

	yamlFile := filepath.Join(dir, "vars.yaml")
	require.NoError(t, os.WriteFile(yamlFile, []byte("db_password: \"a: b\"\nport: 5432\n"), 0o600))
	vals, err = ReadVarFile(yamlFile)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"db_password": "a: b", "port": "5432"}, vals)

	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.WriteFile(bad, []byte("db_password: [gen-secret-in-list]\n"), 0o600))
	_, err = ReadVarFile(bad)
	require.ErrorContains(t, err, "db_password: want a scalar value")
	assert.NotContains(t, err.Error(), "gen-secret")
	_, err = ReadVarFile(filepath.Join(dir, "missing"))
	require.Error(t, err)
}
