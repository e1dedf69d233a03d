package fastdeployreceiver

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TestAttributeTableComplete keeps the README's attribute table and what
// the receiver emits in step, both ways: every attribute in the goldens'
// resources, spans, span events and log records, and every deployattr name
// the receiver's code uses, must have a row; every row must be emitted.
// Attribute names live in internal/deployattr only: a dotted string
// literal used as a key in the receiver's code fails the test.
func TestAttributeTableComplete(t *testing.T) {
	table := readAttributeTable(t)
	emitted := map[string]string{}
	for key, where := range goldenAttributeKeys(t) {
		emitted[key] = where
	}
	names := deployattrNames(t)
	used, literals := receiverAttributeKeys(t, names)
	for _, key := range used {
		if _, ok := emitted[key]; !ok {
			emitted[key] = "the receiver's code"
		}
	}
	assert.Empty(t, literals, "attribute names in string literals; define them in internal/deployattr")

	for key, where := range emitted {
		if !table[key] {
			t.Errorf("%s emits %s, which the README's attribute table lacks", where, key)
		}
	}
	for key := range table {
		if _, ok := emitted[key]; !ok {
			t.Errorf("the README's attribute table lists %s, which nothing emits", key)
		}
	}
	// The check has teeth: the goldens hold the names users query.
	for _, key := range []string{"ansible.task.name", "ansible.task.host.status", "cicd.pipeline.task.name", "deployment.id", "service.name"} {
		_, ok := emitted[key]
		assert.True(t, ok, key)
	}
}

// readAttributeTable returns the first column of the tables under the
// README's "## Attributes" heading, up to the next heading.
func readAttributeTable(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	text := string(b)
	start := strings.Index(text, "\n## Attributes\n")
	require.GreaterOrEqual(t, start, 0, "README.md has an ## Attributes section")
	section := text[start+1:]
	if end := regexp.MustCompile(`\n#{1,3} `).FindStringIndex(section[1:]); end != nil {
		section = section[:end[0]+1]
	}
	row := regexp.MustCompile("^\\| `([^`]+)` \\|")
	out := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			assert.False(t, out[m[1]], "%s has two rows", m[1])
			out[m[1]] = true
		}
	}
	require.NotEmpty(t, out, "no rows in the attribute table")
	return out
}

// goldenAttributeKeys collects the top-level attribute keys of every golden
// file's output, with where one was seen.
func goldenAttributeKeys(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := map[string]string{}
	add := func(m pcommon.Map, where string) {
		for k := range m.All() {
			if _, ok := out[k]; !ok {
				out[k] = where
			}
		}
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var docs []json.RawMessage
		require.NoError(t, json.Unmarshal(raw, &docs), f)
		for _, doc := range docs {
			if isTraces(doc) {
				td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(doc)
				require.NoError(t, err, f)
				for _, rs := range td.ResourceSpans().All() {
					add(rs.Resource().Attributes(), f+" (resource)")
					for _, ss := range rs.ScopeSpans().All() {
						for _, s := range ss.Spans().All() {
							add(s.Attributes(), f+" (span "+s.Name()+")")
							for _, ev := range s.Events().All() {
								add(ev.Attributes(), f+" (event "+ev.Name()+")")
							}
						}
					}
				}
				continue
			}
			ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(doc)
			require.NoError(t, err, f)
			for _, rl := range ld.ResourceLogs().All() {
				add(rl.Resource().Attributes(), f+" (resource)")
				for _, sl := range rl.ScopeLogs().All() {
					for _, lr := range sl.LogRecords().All() {
						add(lr.Attributes(), f+" (log "+lr.EventName()+")")
					}
				}
			}
		}
	}
	return out
}

// deployattrNames maps the constants of internal/deployattr to their
// values, leaving out the values of fastdeploy.span.kind (SpanKind*),
// which are no attribute names.
func deployattrNames(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "..", "internal", "deployattr", "deployattr.go"), nil, 0)
	require.NoError(t, err)
	out := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				if strings.HasPrefix(name.Name, "SpanKind") && name.Name != "SpanKind" {
					continue
				}
				v, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				out[name.Name] = v
			}
		}
	}
	require.Contains(t, out, "AnsibleTaskName")
	return out
}

// receiverAttributeKeys returns the deployattr names the receiver's code
// uses, and dotted string literals it passes as keys to pcommon.Map's
// Put methods or putStrIf (nested map fields, such as the recap's
// "failures", have no dot).
func receiverAttributeKeys(t *testing.T, names map[string]string) (used, literals []string) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if pkg, ok := n.X.(*ast.Ident); ok && pkg.Name == "deployattr" {
					if v, ok := names[n.Sel.Name]; ok && !slices.Contains(used, v) {
						used = append(used, v)
					}
				}
			case *ast.CallExpr:
				keyArg := -1
				switch fn := n.Fun.(type) {
				case *ast.SelectorExpr:
					if strings.HasPrefix(fn.Sel.Name, "Put") {
						keyArg = 0
					}
				case *ast.Ident:
					if fn.Name == "putStrIf" {
						keyArg = 1
					}
				}
				if keyArg >= 0 && keyArg < len(n.Args) {
					if lit, ok := n.Args[keyArg].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if v, _ := strconv.Unquote(lit.Value); strings.Contains(v, ".") {
							literals = append(literals, fset.Position(lit.Pos()).String()+": "+v)
						}
					}
				}
			}
			return true
		})
	}
	return used, literals
}
