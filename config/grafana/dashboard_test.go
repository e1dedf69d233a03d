// Package grafana holds no code: its test checks the shipped Grafana
// dashboard and the Prometheus rule files against Prometheus's own PromQL
// parser and against the metrics the deploy_metrics connector documents.
package grafana

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const (
	dashboardFile   = "deployments.json"
	connectorReadme = "../../connector/deploymetricsconnector/README.md"
	rulesGlob       = "../prometheus/*.rules.yml"
)

// metricLabels maps each series name Prometheus gets from the connector
// (histograms as _bucket, _sum and _count) to the labels it carries.
type metricLabels map[string]map[string]bool

// connectorMetrics reads the metrics table of the connector's README: the
// documented contract of what it emits.
func connectorMetrics(t *testing.T) metricLabels {
	t.Helper()
	raw, err := os.ReadFile(connectorReadme)
	require.NoError(t, err)
	row := regexp.MustCompile("^\\| `([a-z_]+)`[^|]*\\| (counter|gauge|histogram) \\| ([^|]+) \\|")
	label := regexp.MustCompile("`([a-z_]+)`")
	out := metricLabels{}
	for _, line := range strings.Split(string(raw), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ls := map[string]bool{}
		for _, l := range label.FindAllStringSubmatch(m[3], -1) {
			ls[l[1]] = true
		}
		if m[2] != "histogram" {
			out[m[1]] = ls
			continue
		}
		bucket := map[string]bool{"le": true}
		for l := range ls {
			bucket[l] = true
		}
		out[m[1]+"_bucket"] = bucket
		out[m[1]+"_sum"] = ls
		out[m[1]+"_count"] = ls
	}
	for _, name := range []string{"deployments_total", "deployment_duration_seconds_bucket", "step_duration_seconds_bucket",
		"step_failures_total", "active_deployments"} {
		require.Contains(t, out, name, "the connector README's metrics table must list %s", name)
	}
	return out
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type namedExpr struct{ where, expr string }

// rules returns every rule expression of the shipped rule files and the
// names the recording rules define.
func rules(t *testing.T) ([]namedExpr, map[string]bool) {
	t.Helper()
	files, err := filepath.Glob(rulesGlob)
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var exprs []namedExpr
	recorded := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var rf ruleFile
		require.NoError(t, yaml.Unmarshal(raw, &rf), f)
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				name := r.Record + r.Alert
				exprs = append(exprs, namedExpr{where: fmt.Sprintf("%s: %s", filepath.Base(f), name), expr: r.Expr})
				if r.Record != "" {
					assert.False(t, recorded[r.Record], "%s is recorded twice", r.Record)
					recorded[r.Record] = true
				}
			}
		}
	}
	return exprs, recorded
}

// grafanaVars stands in for Grafana's variables so that an expression can
// be parsed as Prometheus will receive it.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "${__rate_interval}", "5m",
	"$__interval", "1m", "${__interval}", "1m",
	"$__range", "1d", "${__range}", "1d",
)

// promql parses as a Prometheus server with no experimental features does.
var promql = parser.NewParser(parser.Options{})

var userVar = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)

func substitute(expr string) string {
	return userVar.ReplaceAllString(grafanaVars.Replace(expr), ".*")
}

// checkExpr parses expr and checks that every series it selects is a
// connector metric or a recording rule, and that label matchers on
// connector metrics name labels those metrics have.
func checkExpr(expr string, metrics metricLabels, recorded map[string]bool) []error {
	parsed, err := promql.ParseExpr(substitute(expr))
	if err != nil {
		return []error{fmt.Errorf("does not parse: %w", err)}
	}
	var errs []error
	selectors := 0
	parser.Inspect(parsed, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		selectors++
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if recorded[name] {
			return nil
		}
		ls, ok := metrics[name]
		if !ok {
			errs = append(errs, fmt.Errorf("selects %q, which neither the connector nor a recording rule produces", name))
			return nil
		}
		for _, m := range vs.LabelMatchers {
			switch m.Name {
			case labels.MetricName, "job", "instance":
			default:
				if !ls[m.Name] {
					errs = append(errs, fmt.Errorf("matches label %q, which %s does not have", m.Name, name))
				}
			}
		}
		return nil
	})
	if selectors == 0 {
		errs = append(errs, fmt.Errorf("selects no series"))
	}
	return errs
}

type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Panels     []panel
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string      `json:"name"`
			Expr       string      `json:"expr"`
			Datasource *datasource `json:"datasource"`
		} `json:"list"`
	} `json:"annotations"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
		Exemplar   bool        `json:"exemplar"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(raw, &d))
	return d
}

func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// dashboardExprs returns every PromQL expression of the dashboard: panel
// targets, annotations, and the metric selectors of label_values queries.
func dashboardExprs(t *testing.T, d dashboard) []namedExpr {
	t.Helper()
	var out []namedExpr
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			out = append(out, namedExpr{where: fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), expr: tg.Expr})
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, namedExpr{where: fmt.Sprintf("annotation %q", a.Name), expr: a.Expr})
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*([a-z_]+)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		require.NoError(t, json.Unmarshal(v.Query, &q), "variable %s", v.Name)
		m := labelValues.FindStringSubmatch(q.Query)
		require.NotNil(t, m, "variable %s: want label_values(selector, label), got %q", v.Name, q.Query)
		out = append(out, namedExpr{where: "variable " + v.Name, expr: m[1]})
	}
	return out
}

func TestDashboardAndRulesQueryOnlyConnectorMetrics(t *testing.T) {
	metrics := connectorMetrics(t)
	ruleExprs, recorded := rules(t)
	d := loadDashboard(t)
	exprs := append(dashboardExprs(t, d), ruleExprs...)
	require.Greater(t, len(exprs), 30)
	for _, e := range exprs {
		for _, err := range checkExpr(e.expr, metrics, recorded) {
			t.Errorf("%s: %v\n%s", e.where, err, e.expr)
		}
	}
}

// TestDashboardCoversTheIssue checks what the dashboard must show, that it
// is import-ready (every query on the datasource variable) and laid out
// without overlaps.
func TestDashboardCoversTheIssue(t *testing.T) {
	d := loadDashboard(t)
	assert.NotEmpty(t, d.UID)
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	assert.Equal(t, "datasource", vars["datasource"], "the data source is a variable")
	for _, name := range []string{"service", "environment"} {
		assert.Equal(t, "query", vars[name], "variable %s", name)
	}

	ids := map[int]bool{}
	var occupied []panel
	queried := map[string]bool{}
	exemplarPanels := 0
	for _, p := range allPanels(d.Panels) {
		assert.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		assert.LessOrEqual(t, p.GridPos.X+p.GridPos.W, 24, "panel %q is wider than the grid", p.Title)
		for _, o := range occupied {
			overlap := p.GridPos.X < o.GridPos.X+o.GridPos.W && o.GridPos.X < p.GridPos.X+p.GridPos.W &&
				p.GridPos.Y < o.GridPos.Y+o.GridPos.H && o.GridPos.Y < p.GridPos.Y+p.GridPos.H
			assert.False(t, overlap, "panels %q and %q overlap", p.Title, o.Title)
		}
		occupied = append(occupied, p)
		if p.Type == "row" {
			continue
		}
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		require.NotNil(t, p.Datasource, "panel %q", p.Title)
		assert.Equal(t, "${datasource}", p.Datasource.UID, "panel %q uses the datasource variable", p.Title)
		hasExemplar := false
		for _, tg := range p.Targets {
			require.NotNil(t, tg.Datasource, "panel %q target %s", p.Title, tg.RefID)
			assert.Equal(t, "${datasource}", tg.Datasource.UID, "panel %q target %s", p.Title, tg.RefID)
			parsed, err := promql.ParseExpr(substitute(tg.Expr))
			require.NoError(t, err)
			parser.Inspect(parsed, func(node parser.Node, _ []parser.Node) error {
				if vs, ok := node.(*parser.VectorSelector); ok {
					queried[vs.Name] = true
					if tg.Exemplar && strings.HasSuffix(vs.Name, "_duration_seconds_bucket") {
						hasExemplar = true
					}
				}
				return nil
			})
		}
		if hasExemplar {
			exemplarPanels++
		}
	}
	var names []string
	for n := range queried {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, want := range []string{
		"deployments_total", "active_deployments", "deployment_duration_seconds_bucket",
		"step_duration_seconds_bucket", "step_failures_total",
		"service_environment:deployments_succeeded:increase7d",
		"service_environment:deployments_change_failure:ratio7d",
		"service_environment:deployment_time_to_restore_seconds:p50_7d",
		"service_environment:deployment_lead_time_seconds:p50_7d",
	} {
		assert.Contains(t, names, want, "the dashboard shows %s", want)
	}
	assert.GreaterOrEqual(t, exemplarPanels, 2, "duration panels ask for exemplars, which link to traces")
}

// TestCheckExprCatchesMistakes makes sure the checks above can fail.
func TestCheckExprCatchesMistakes(t *testing.T) {
	metrics := metricLabels{
		"deployments_total":                  {"service": true, "environment": true, "status": true},
		"deployment_duration_seconds_bucket": {"service": true, "environment": true, "status": true, "le": true},
	}
	recorded := map[string]bool{"service_environment:deployments_change_failure:ratio7d": true}
	tests := []struct {
		name, expr, wantErr string
	}{
		{name: "valid with grafana variables", expr: `sum by (status) (increase(deployments_total{service=~"$service"}[$__rate_interval]))`},
		{name: "recording rule", expr: `service_environment:deployments_change_failure:ratio7d > 0.2`},
		{name: "syntax error", expr: `sum by (status) (rate(deployments_total[5m])`, wantErr: "does not parse"},
		{name: "unknown metric", expr: `rate(deployment_total[5m])`, wantErr: `selects "deployment_total"`},
		{name: "label the metric lacks", expr: `deployments_total{step_name="build"}`, wantErr: `label "step_name"`},
		{name: "variable outside a string", expr: `rate(deployments_total[$window]) > $threshold`, wantErr: "does not parse"},
		{name: "no series", expr: `vector(1)`, wantErr: "selects no series"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := checkExpr(tt.expr, metrics, recorded)
			if tt.wantErr == "" {
				assert.Empty(t, errs)
				return
			}
			require.NotEmpty(t, errs)
			assert.Contains(t, fmt.Sprint(errs), tt.wantErr)
		})
	}
}
