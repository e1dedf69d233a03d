package fastdeployreceiver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/deploytrace"
	"github.com/fastdeploy/otelcol-fastdeploy/processor/secretredactionprocessor"
)

// randomFrom is n characters drawn from alphabet: planted secrets are
// generated at run time, so no literal in the tests looks like a
// credential.
func randomFrom(t *testing.T, alphabet string, n int) string {
	t.Helper()
	var b strings.Builder
	for range n {
		i, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		require.NoError(t, err)
		b.WriteByte(alphabet[i.Int64()])
	}
	return b.String()
}

const (
	alnum  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	base32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	hexLow = "0123456789abcdef"
)

// planted are the values the test hides in every stored string: secrets
// of several categories, each inside ordinary text, and near misses that
// must come back untouched.
type planted struct {
	secrets   map[string]string // category: the secret itself
	nearMiss  map[string]string
	keyValued map[string]string // context values secret by their key alone
}

func plant(t *testing.T) planted {
	t.Helper()
	key := make([]byte, 600)
	_, err := rand.Read(key)
	require.NoError(t, err)
	pem := "-----BEGIN RSA PRIVATE" + " KEY-----\n" + base64.StdEncoding.EncodeToString(key) + "\n-----END RSA PRIVATE" + " KEY-----"
	return planted{
		secrets: map[string]string{
			"github_token":        "ghp" + "_" + randomFrom(t, alnum, 36),
			"aws_access_key_id":   "AK" + "IA" + randomFrom(t, base32, 16),
			"private_key":         pem,
			"password_assignment": "DB_PASSWORD=" + randomFrom(t, alnum, 24),
			"gitlab_token":        "glpat" + "-" + randomFrom(t, alnum, 20),
		},
		nearMiss: map[string]string{
			"git sha":          randomFrom(t, hexLow, 40),
			"short ghp prefix": "ghp" + "_" + randomFrom(t, alnum, 8),
			"password word":    "password-reset-page-" + randomFrom(t, hexLow, 6),
			"lowercase akia":   "akia" + strings.ToLower(randomFrom(t, base32, 16)),
		},
		keyValued: map[string]string{
			"db_password": "plain" + randomFrom(t, hexLow, 12),
			"api_token":   "plain" + randomFrom(t, hexLow, 12),
		},
	}
}

func (p planted) texts() []string {
	var out []string
	for _, m := range []map[string]string{p.secrets, p.nearMiss} {
		for _, v := range m {
			out = append(out, "before "+v+" after")
		}
	}
	return out
}

// fillPlanted sets every string field of v (nested structs, pointers,
// slices included) to text around a planted value, and every context map
// to one holding them by key, in nested maps, as a name/value pair and
// in an argv; other kinds get fillAll's values. A string field added
// later is covered too.
func fillPlanted(t *testing.T, v reflect.Value, p planted, seed *int) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		texts := p.texts()
		v.SetString(texts[*seed%len(texts)])
		*seed++
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			fillAll(t, v, seed)
			return
		}
		for i := range v.NumField() {
			f := v.Field(i)
			if !f.CanSet() {
				f = reflect.NewAt(f.Type(), f.Addr().UnsafePointer()).Elem()
			}
			fillPlanted(t, f, p, seed)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillPlanted(t, v.Elem(), p, seed)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), len(p.texts()), len(p.texts())))
		for i := range v.Len() {
			fillPlanted(t, v.Index(i), p, seed)
		}
	case reflect.Map:
		ctx := map[string]any{"release": json.Number("42")}
		for k, s := range p.keyValued {
			ctx[k] = s
		}
		for i, s := range p.texts() {
			ctx[fmt.Sprintf("note%d", i)] = s
		}
		ctx["nested"] = map[string]any{"inner": p.texts()[0], "list": []any{"deploy", p.secrets["github_token"]}}
		ctx["pair"] = map[string]any{"name": "API_TOKEN", "value": "plain" + p.keyValued["api_token"]}
		ctx["argv"] = []any{"deploy", "--password", p.keyValued["db_password"]}
		v.Set(reflect.ValueOf(ctx))
	default:
		fillAll(t, v, seed)
	}
}

// processorRemoves runs the secret_redaction processor, default config,
// over a span whose attributes hold each value, and reports which of the
// needles its output no longer holds.
func processorRemoves(t *testing.T, values map[string]any, needles []string) map[string]bool {
	t.Helper()
	sink := new(consumertest.TracesSink)
	f := secretredactionprocessor.NewFactory()
	p, err := f.CreateTraces(context.Background(), processortest.NewNopSettings(f.Type()), f.CreateDefaultConfig(), sink)
	require.NoError(t, err)
	td := ptrace.NewTraces()
	span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	require.NoError(t, span.Attributes().FromRaw(values))
	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	var out bytes.Buffer
	for _, got := range sink.AllTraces() {
		got.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().Range(func(k string, v pcommon.Value) bool {
			out.WriteString(k + "=" + v.AsString() + "\n")
			return true
		})
	}
	removed := map[string]bool{}
	for _, n := range needles {
		removed[n] = !strings.Contains(out.String(), n)
	}
	return removed
}

// TestPersistRedactsSecretsAtRest: secrets planted in every string field
// of the in-flight state (deployment, context, step, Ansible run,
// delivery id) are not in the bytes written to storage, wherever the
// secret_redaction processor would have removed them; near misses are
// stored as they were; the in-flight state in memory keeps its values.
func TestPersistRedactsSecretsAtRest(t *testing.T) {
	t.Parallel()
	p := plant(t)
	seed := 0
	var d deploymentState
	fillPlanted(t, reflect.ValueOf(&d).Elem(), p, &seed)
	var s stepState
	fillPlanted(t, reflect.ValueOf(&s).Elem(), p, &seed)
	var run ansibleRun
	fillPlanted(t, reflect.ValueOf(&run).Elem(), p, &seed)
	pristine := d.clone()
	pristineContext, err := json.Marshal(d.Info.Context)
	require.NoError(t, err)

	tr := newTracker(time.Hour, 16, "test")
	tr.deployments[string(d.Info.ID)] = &d
	tr.steps[stepKey{deployment: string(d.Info.ID), name: s.Step.Name, position: s.Step.Position}] = &s
	tr.runs.Put(deploytrace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, run)
	store := newMemStorage()
	tr.persist, err = newPersister(store, 16)
	require.NoError(t, err)
	var deliveryIDs []string
	for _, text := range p.texts() {
		deliveryIDs = append(deliveryIDs, "delivery "+text)
	}
	require.NoError(t, tr.persist.save(context.Background(), tr, true, deliveryIDs))

	var raw bytes.Buffer
	for _, v := range store.Snapshot() {
		raw.Write(v)
	}
	// JSON escapes the PEM's newlines: look for each line.
	stored := func(s string) bool {
		for _, line := range strings.Split(s, "\n") {
			if !bytes.Contains(raw.Bytes(), []byte(line)) {
				return false
			}
		}
		return true
	}

	var needles []string
	for _, m := range []map[string]string{p.secrets, p.nearMiss, p.keyValued} {
		for _, v := range m {
			needles = append(needles, v)
		}
	}
	// The context as attribute values (numbers as float64, not json.Number).
	var contextAttr map[string]any
	require.NoError(t, json.Unmarshal(pristineContext, &contextAttr))
	oracle := map[string]any{"context": contextAttr}
	for i, text := range p.texts() {
		oracle[fmt.Sprintf("text%d", i)] = text
	}
	removed := processorRemoves(t, oracle, needles)

	for category, secret := range p.secrets {
		require.True(t, removed[secret], "%s: the processor removes it (else the test plants the wrong thing)", category)
		assert.False(t, stored(secret), "%s is stored", category)
	}
	for key, secret := range p.keyValued {
		require.True(t, removed[secret], "%s: the processor masks it", key)
		assert.False(t, stored(secret), "the value under %s is stored", key)
	}
	for what, value := range p.nearMiss {
		require.False(t, removed[value], "%s: the processor keeps it", what)
		assert.True(t, stored(value), "%s: a near miss is stored as it was", what)
	}
	assert.Contains(t, raw.String(), "[REDACTED:github_token]")

	assert.Equal(t, pristine, &d, "the in-flight deployment is not changed")
	after, err := json.Marshal(d.Info.Context)
	require.NoError(t, err)
	assert.JSONEq(t, string(pristineContext), string(after), "nor its context")
	assert.True(t, tr.delivered.Contains(deliveryIDs[0]) == false, "save does not record delivery ids in memory; commit does")
}

// TestPersistRedactsWhatRequestsBring: through the HTTP path, a
// deployment's context, a step's message and stderr tail reach storage
// redacted, and the stored state restores (the redacted values) after a
// restart.
func TestPersistRedactsWhatRequestsBring(t *testing.T) {
	t.Parallel()
	p := plant(t)
	store := newMemStorage()
	before := restartable(t, store, nil)
	token, keyID := p.secrets["github_token"], p.secrets["aws_access_key_id"]
	ctx := fmt.Sprintf(`,"context":{"db_password":%q,"note":"uses %s"}`, p.keyValued["db_password"], keyID)
	step := fmt.Sprintf(`,"step":{"name":"migrate","position":0,"message":"auth %s refused"}`, token)
	require.Equal(t, 200, before.events(t,
		depEvCtx("deployment.started", "rest", 0, ctx, ""),
		depEv("step.started", "rest", 1, step),
		depEv("step.started", "rest", 2, `,"step":{"name":"verify","position":1,"message":"`+p.nearMiss["git sha"]+`"}`),
	).status)
	var raw bytes.Buffer
	for _, v := range store.Snapshot() {
		raw.Write(v)
	}
	for _, secret := range []string{token, keyID, p.keyValued["db_password"]} {
		assert.NotContains(t, raw.String(), secret)
	}
	assert.Contains(t, raw.String(), p.nearMiss["git sha"])

	after := restartable(t, store, nil)
	assert.Equal(t, 3, after.r.tracker.inflight(), "deployment and open steps restored")
}

// BenchmarkPersistSaveAtCap: one request's commit with 1000 deployments
// in flight (the default cap), 0.6 KB of context each: the request
// changed one deployment, which alone is redacted again; the whole state
// is encoded and written.
func BenchmarkPersistSaveAtCap(b *testing.B) {
	tr := newTracker(time.Hour, 16, "bench")
	pad := strings.Repeat("p", 560)
	for i := range defaultMaxInflightDeployments {
		id := fmt.Sprintf("d%d", i)
		tr.deployments[id] = &deploymentState{Trace: deploytrace.DeploymentTraceID(id), Started: testNow, Touched: testNow}
		tr.deployments[id].Info.ID = "x"
		tr.deployments[id].Info.Service = "api"
		tr.deployments[id].Info.Context = map[string]any{"pad": pad, "n": json.Number(fmt.Sprint(i))}
	}
	store := newMemStorage()
	var err error
	tr.persist, err = newPersister(store, 16)
	require.NoError(b, err)
	require.NoError(b, tr.persist.save(context.Background(), tr, true, nil))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("d%d", i%defaultMaxInflightDeployments)
		tr.deployments[id] = tr.deployments[id].clone()
		if err := tr.persist.save(context.Background(), tr, true, nil); err != nil {
			b.Fatal(err)
		}
	}
	state, _ := store.Get(context.Background(), keyState)
	b.ReportMetric(float64(len(state))/1024, "state-KiB")
}
