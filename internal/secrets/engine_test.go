package secrets

import (
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	e, err := New(opts)
	require.NoError(t, err)
	return e
}

func TestRedact(t *testing.T) {
	e := newEngine(t, Options{})
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"clean", "TASK [deploy : restart nginx] changed: [web-01]", "TASK [deploy : restart nginx] changed: [web-01]"},
		{"env assignment", "DATABASE_PASSWORD=hunter2 ./migrate", "DATABASE_PASSWORD=[REDACTED:generic_secret] ./migrate"},
		{"url credentials", "DATABASE_URL=postgres://app:s3cr3t-pw@db.internal:5432/app",
			"DATABASE_URL=postgres://app:[REDACTED:url_credentials]@db.internal:5432/app"},
		{"json", `{"api_key": "abcd1234efgh", "user": "bob"}`, `{"api_key": "[REDACTED:generic_secret]", "user": "bob"}`},
		{"yaml", "db:\n  password: Tr0ub4dor&3\n  host: x", "db:\n  password: [REDACTED:generic_secret]\n  host: x"},
		{"cli flag", "mytool --password 'p4ss w0rd' --verbose", "mytool --password '[REDACTED:cli_secret_flag]' --verbose"},
		{"bearer", "curl -H 'Authorization: Bearer abc123def456ghi' https://api",
			"curl -H 'Authorization: Bearer [REDACTED:bearer_token]' https://api"},
		{"github", "token ghp_0123456789abcdefghijABCDEFGHIJ012345 used", "token [REDACTED:github_token] used"},
		{"aws", "AKIAIOSFODNN7EXAMPLE", "[REDACTED:aws_access_key_id]"},
		{"pem", "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----\ndone",
			"key:\n[REDACTED:private_key]\ndone"},
		{"task name", "TASK [Set database password] ***", "TASK [Set database password] ***"},
		{"token ttl", "token_ttl: 3600", "token_ttl: 3600"},
		{"uuid", "request 123e4567-e89b-12d3-a456-426614174000 ok", "request 123e4567-e89b-12d3-a456-426614174000 ok"},
		{"prose colon", "password: must be at least 12 characters", "password: must be at least 12 characters"},
		{"placeholder", "DB_PASSWORD=${DB_PASSWORD}", "DB_PASSWORD=${DB_PASSWORD}"},
		{"password file", "--password-file /run/secrets/db", "--password-file /run/secrets/db"},
		{"pwd env", "PWD=/home/deploy", "PWD=/home/deploy"},
		{"certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
		{"mysql", "mysql -u root -pS3cretPw -h db", "mysql -u root -p[REDACTED:mysql_cli_password] -h db"},
		// References to where a secret is, beside the secret itself.
		{"flag names a source", "openssl enc -d -in f.enc -pass env:ENC_PASSWORD", "openssl enc -d -in f.enc -pass env:ENC_PASSWORD"},
		{"flag holds the secret", "openssl enc -d -in f.enc -pass pass:Xk9-pq2-Lm", "openssl enc -d -in f.enc -pass [REDACTED:cli_secret_flag]"},
		{"value read from a file", "vault kv put secret/app password=@/run/secrets/pw", "vault kv put secret/app password=@/run/secrets/pw"},
		{"value in place", "vault kv put secret/app password=Xk9pq2Lm", "vault kv put secret/app password=[REDACTED:generic_secret]"},
		// Elements that describe a secret, and one that holds a short one.
		{"lifetime element", "<tokenLifetime>3600</tokenLifetime>", "<tokenLifetime>3600</tokenLifetime>"},
		{"encoding element", "<passwordEncoding>bcrypt</passwordEncoding>", "<passwordEncoding>bcrypt</passwordEncoding>"},
		{"numeric password element", "<password>48213</password>", "<password>[REDACTED:xml_secret_element]</password>"},
		// What a tool printed in place of the secret.
		{"status value", "password: sent", "password: sent"},
		{"kubectl omitted", "client-key-data: DATA+OMITTED", "client-key-data: DATA+OMITTED"},
		// Decoding a literal: a sentence is a message, a passphrase is not.
		{"decoded sentence", "echo ZGVwbG95IGZpbmlzaGVkIG9uIHdlYi0wMQ== | base64 -d", "echo ZGVwbG95IGZpbmlzaGVkIG9uIHdlYi0wMQ== | base64 -d"},
		{"decoded passphrase", "echo Y29wcGVyIG1hcGxlIHF1YXJ0eiBvcmJpdA== | base64 -d", "echo [REDACTED:base64_piped_literal] | base64 -d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tally Tally
			got, changed := e.Redact(tt.in, &tally)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.in != tt.want, changed)
			assert.Equal(t, strings.Count(tt.want, "[REDACTED:"), tally.Item)
		})
	}
}

func TestSecretKeys(t *testing.T) {
	e := newEngine(t, Options{ExtraSecretKeys: []string{"Vendor_Blob"}})
	secret := []string{"password", "db_password", "DB_PASSWORD", "dbPassword", "PGPASSWORD", "api_key", "apiKey", "x-api-key",
		"APIKey", "Authorization", "set-cookie", "client_secret", "aws_secret_access_key", "ansible_become_pass",
		"private_key", "token", "github.token", "credentials", "AccountKey", "vendor_blob", "my.vendor_blob.x", "pass", "PASS", "VAULT_SECRET_ID", "secret_id", "client_key", "ssh_key", "sshKey", "encryption_key", strings.Repeat("x_", 100) + "password", "db password", "password_reset_token"}
	clean := []string{"", "deployment.id", "service.name", "token_ttl", "password_file", "secret_name", "secretName",
		"PWD", "max_tokens", "public_key", "primary_key", "secret_arn", "kms_key", "key", "ssh_key_path", "cicd.pipeline.task.name", "author", "passed", "bypass",
		"password_changed", "auth_type", "no_password", "token_expires_at", "monkey", "password_reset",
		"AKIA is the access key prefix", "the token for the registry"}
	for _, k := range secret {
		assert.True(t, e.IsSecretKey(k), k)
	}
	for _, k := range clean {
		assert.False(t, e.IsSecretKey(k), k)
	}
}

func TestOptions(t *testing.T) {
	e := newEngine(t, Options{
		Disabled:      []string{"jwt"},
		Extra:         []Rule{{Name: "acme_token", Keywords: []string{"acme_"}, Pattern: `acme_[0-9a-f]{16}`}},
		AllowedValues: []*regexp.Regexp{regexp.MustCompile(`^hunter2$`)},
		HashKey:       []byte("0123456789abcdef0123456789abcdef"),
	})
	var tally Tally
	got, _ := e.Redact("x acme_0123456789abcdef y", &tally)
	assert.Regexp(t, `^x \[REDACTED:acme_token:[0-9a-f]{12}\] y$`, got)
	again, _ := e.Redact("acme_0123456789abcdef", &tally)
	assert.Equal(t, got[2:len(got)-2], again, "same secret, same hash")
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	got, _ = e.Redact(jwt, &tally)
	assert.Equal(t, jwt, got)
	got, _ = e.Redact("password=hunter2", &tally)
	assert.Equal(t, "password=hunter2", got)
	assert.NotContains(t, e.RuleNames(), "jwt")

	_, err := New(Options{Extra: []Rule{{Name: "broken", Pattern: `(`}}})
	assert.ErrorContains(t, err, `"broken"`)
}

func TestRedactCleanDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own; run without -race")
	}
	e := newEngine(t, Options{})
	texts := []string{
		"TASK [common : install packages] changed: [web-01] => (item=nginx)",
		"commit 3f786850e387550fdab836ed7e6dc881de23001b deployed to production",
		"token rotation is scheduled for 12:00",
	}
	for _, text := range texts {
		var tally Tally
		allocs := testing.AllocsPerRun(100, func() { e.Redact(text, &tally) })
		assert.Zero(t, allocs, text)
	}
}

func BenchmarkRedactClean(b *testing.B) {
	e := newEngine(b, Options{})
	text := strings.Repeat("TASK [deploy : restart service] changed: [web-01] ok=3 ", 40)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	var tally Tally
	for b.Loop() {
		e.Redact(text, &tally)
	}
}

// skipTimingUnderRace: the race detector slows code unevenly, so time
// ratios mean nothing under it; make test runs these tests without it.
func skipTimingUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("timing ratios are run without -race (make unit-test runs them so)")
	}
}

// redactTime is the CPU time one Redact of text costs: the least, over a
// few rounds, of the calling thread's CPU time per call, each round
// running batches of calls, doubling, until one has used enough CPU time
// for the clock's resolution and the cost of reading it not to matter.
// The thread's clock leaves out time other processes ran, and the least
// of a few rounds leaves out a round that paid for a cold cache or garbage
// collection, so ratios of it compare work, not the machine's load.
func redactTime(e *Engine, text string) time.Duration {
	var tally Tally
	return cpuTimePerCall(func() {
		tally.StartItem()
		e.Redact(text, &tally)
	})
}

func cpuTimePerCall(f func()) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const rounds, enough = 5, 2 * time.Millisecond
	best := time.Duration(1<<63 - 1)
	for range rounds {
		for calls := 1; ; calls *= 2 {
			start := threadCPUTime()
			for range calls {
				f()
			}
			if used := threadCPUTime() - start; used >= enough {
				best = min(best, used/time.Duration(calls))
				break
			}
		}
	}
	return best
}

// TestRedactLinear guards against super-linear work on adversarial input:
// eight times the text may cost at most 24 times the CPU time (linear work
// costs 8 times, quadratic 64 times), whatever the machine's speed or load.
func TestRedactLinear(t *testing.T) {
	skipTimingUnderRace(t)
	e := newEngine(t, Options{})
	units := []string{
		"pass", "password=", "-----BEGIN PRIVATE KEY-----", "a://b:c@", "ab://b:", "token: x\n",
		"token: a ", `x password="x `, `password=\"x `, "token='", "bearer ", "authorization:", "--password ",
		"mysql ", "$ANSIBLE_VAULT;1.1;AES256\\n", "Private-Lines: 1\\nA",
	}
	for _, unit := range units {
		small := strings.Repeat(unit, 8_000/len(unit))
		large := strings.Repeat(unit, 64_000/len(unit))
		ratio := float64(redactTime(e, large)) / float64(redactTime(e, small))
		assert.Less(t, ratio, 24.0, "%q: 8x the text took %.0fx the time", unit, ratio)
	}
}

// TestRedactCleanBytesCostNoRegex: text around a keyword costs a few
// keyword scans of the text (one per rule the keyword gates, 5 to 10 times
// the clean text's one scan, in CPU time), not a regex pass per byte
// (hundreds of times). The fuzzer
// found long runs of letters or invalid UTF-8 before a URL with
// credentials: the URL pattern, which started with the scheme, ran its
// counted repetition from every byte (over 2 µs a byte, stalling fuzzing).
func TestRedactCleanBytesCostNoRegex(t *testing.T) {
	skipTimingUnderRace(t)
	e := newEngine(t, Options{})
	for _, filler := range []string{"A", "\xbb", "a0", "x ", "-"} {
		pad := strings.Repeat(filler, 64_000/len(filler))
		for text, secret := range map[string]string{
			" postgres://app:Sup3rS3cret@db:5432/app ": "Sup3rS3cret",
			" Bearer abc123def456ghi ":                 "abc123def456ghi",
			" password=hunter2 ":                       "hunter2",
			" -----BEGIN RSA PRIVATE KEY-----\nMIIEowIB\n-----END RSA PRIVATE KEY----- ": "MIIEowIB",
		} {
			withSecret := pad + text + pad
			clean := pad + strings.Repeat(" ", len(text)) + pad
			ratio := float64(redactTime(e, withSecret)) / float64(redactTime(e, clean))
			assert.Less(t, ratio, 30.0, "%q around %q: %.0fx the time of clean text", filler, text, ratio)
			var tally Tally
			out, _ := e.Redact(withSecret, &tally)
			assert.Equal(t, 1, tally.Item, "%q around %q", filler, text)
			assert.NotContains(t, out, secret)
		}
	}
}
