package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The leak scenario of a new user: secrets in the environment used by
// steps (mysql -p$VAR, docker login -p $VAR, an argv), a --var whose name
// ends in _key, the collector down so events are spooled. No planted value
// may reach the console, the JSON logs, the spool or the temp directory.
func TestEnvironmentSecretsMaskedEverywhere(t *testing.T) {
	dbPassword := "gen" + strings.Repeat("Db7", 5)
	pat := "ghp_" + strings.Repeat("Zq9", 12)
	encKey := "gen" + strings.Repeat("Ek4", 6)
	t.Setenv("CI_DB_PASSWORD", dbPassword)
	t.Setenv("REGISTRY_PAT", pat)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	dir := t.TempDir()
	planPath := filepath.Join(dir, "plan.yaml")
	require.NoError(t, os.WriteFile(planPath, []byte(`service: web
environment: test
vars:
  encryption_key: {required: true}
  registry_pat: {env: REGISTRY_PAT}
steps:
  - name: migrate
    run: echo mysql -uapp -p$CI_DB_PASSWORD -h db; echo "key is ${encryption_key}"
  - name: login
    run: echo docker login -u ci -p $REGISTRY_PAT registry.example.com
  - name: argv
    command: [echo, docker, login, -p, "${registry_pat}", registry.example.com]
`), 0o600))

	// A port nobody listens on: every event goes to the spool.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	spool := t.TempDir()
	env := map[string]string{"FASTDEPLOY_COLLECTOR_URL": down, "FASTDEPLOY_SPOOL_DIR": spool, "FASTDEPLOY_SECRET": "sign-me",
		"REGISTRY_PAT": pat}
	r := runApp(t, env, nil, "run", "--log-format", "json", "--log-level", "debug", "--delivery-timeout", "1s",
		"--var", "encryption_key="+encKey, planPath)
	assert.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "docker login -u ci -p ***")

	planted := []string{dbPassword, pat, encKey}
	for _, v := range planted {
		assert.NotContains(t, r.stdout, v, "console")
		assert.NotContains(t, r.stderr, v, "logs")
	}
	spooled := 0
	for _, root := range []string{spool, tmp} {
		require.NoError(t, filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			if root == spool {
				spooled++
			}
			for _, v := range planted {
				assert.NotContains(t, string(data), v, path)
			}
			return nil
		}))
	}
	assert.Positive(t, spooled, "the events were spooled")
}
