package testclock

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// facts are what a function reaches, directly or through the functions of
// its package that it calls.
type facts struct {
	fixedClock bool // testNow or testclock.Now
	live       bool // a real tool, a running binary
	derived    bool // testclock.DerivedFrom: the clock comes from the data
}

type funcInfo struct {
	facts
	calls []string
}

// liveSources are calls whose results carry the real time: processes we
// start and the binaries under test.
var liveSources = map[string]map[string]bool{
	"exec":          {"Command": true, "CommandContext": true, "LookPath": true},
	"collectorproc": nil, // every function: it runs the built collector
}

// funcKey names a function within its package; methods are known by name
// only, which over-approximates (a guard may flag too much, never too little).
func funcKey(fd *ast.FuncDecl) string {
	if fd.Recv != nil {
		return "." + fd.Name.Name
	}
	return fd.Name.Name
}

// analyse returns the test functions of one package directory that pair the
// fixed clock with a live source without deriving their clock from the data.
func analyse(fset *token.FileSet, files map[string]*ast.File) []string {
	funcs := map[string]*funcInfo{}
	var tests []string
	for name, f := range files {
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			info := &funcInfo{}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.Ident:
					if n.Name == "testNow" {
						info.fixedClock = true
					}
					info.calls = append(info.calls, n.Name)
				case *ast.SelectorExpr:
					if pkg, ok := n.X.(*ast.Ident); ok {
						if pkg.Name == "testclock" && n.Sel.Name == "Now" {
							info.fixedClock = true
						}
						if pkg.Name == "testclock" && n.Sel.Name == "DerivedFrom" {
							info.derived = true
						}
						if sels, ok := liveSources[pkg.Name]; ok && (sels == nil || sels[n.Sel.Name]) {
							info.live = true
						}
					}
					info.calls = append(info.calls, "."+n.Sel.Name)
				}
				return true
			})
			key := funcKey(fd)
			if prev, ok := funcs[key]; ok { // methods of the same name on different types
				prev.facts = merge(prev.facts, info.facts)
				prev.calls = append(prev.calls, info.calls...)
			} else {
				funcs[key] = info
			}
			if fd.Recv == nil && strings.HasSuffix(name, "_test.go") &&
				(strings.HasPrefix(fd.Name.Name, "Test") || strings.HasPrefix(fd.Name.Name, "Fuzz") || strings.HasPrefix(fd.Name.Name, "Benchmark")) {
				tests = append(tests, fd.Name.Name)
			}
		}
	}
	// What a function calls, it reaches: propagate to a fixed point.
	for changed := true; changed; {
		changed = false
		for _, info := range funcs {
			for _, c := range info.calls {
				callee, ok := funcs[c]
				if !ok || callee == info {
					continue
				}
				if m := merge(info.facts, callee.facts); m != info.facts {
					info.facts, changed = m, true
				}
			}
		}
	}
	var bad []string
	for _, name := range tests {
		if f := funcs[name].facts; f.fixedClock && f.live && !f.derived {
			bad = append(bad, name)
		}
	}
	sort.Strings(bad)
	return bad
}

func merge(a, b facts) facts {
	return facts{fixedClock: a.fixedClock || b.fixedClock, live: a.live || b.live, derived: a.derived || b.derived}
}

func parseDir(t *testing.T, fset *token.FileSet, dir string) map[string]*ast.File {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	files := map[string]*ast.File{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		files[e.Name()] = f
	}
	return files
}

// repoDirs are the directories of the repository's own Go packages.
func repoDirs(t *testing.T) []string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	var dirs []string
	require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		switch {
		case rel != "." && strings.HasPrefix(d.Name(), "."), d.Name() == "testdata", rel == filepath.Join("cmd", "otelcol-fastdeploy"):
			return filepath.SkipDir
		case rel != "." && fileExists(filepath.Join(path, "go.mod")): // another module (tools)
			return filepath.SkipDir
		}
		dirs = append(dirs, path)
		return nil
	}))
	require.NotEmpty(t, dirs)
	return dirs
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestNoFixedClockWithLiveData is the guard: no test in the repository
// reaches both the fixed clock and a live source unless it derives its
// clock from the data.
func TestNoFixedClockWithLiveData(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	checked := 0
	for _, dir := range repoDirs(t) {
		files := parseDir(t, fset, dir)
		checked += len(files)
		assert.Empty(t, analyse(fset, files),
			"%s: these tests pair the fixed test clock with live data; use the real clock, or derive the clock from the data with testclock.DerivedFrom", dir)
	}
	assert.Greater(t, checked, 100, "the guard read the repository")
}

// dateLiteral is an RFC 3339 date-time inside a Go string literal.
var dateLiteral = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}`)

// TestNoFixedDatesPostedToLiveBinaries: the end-to-end tests drive the built
// binaries, whose clock is the real one, so they carry no fixed dates in
// what they send; samples are moved to the present (presentSamples).
func TestNoFixedDatesPostedToLiveBinaries(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	for _, dir := range []string{filepath.Join("..", "..", "test", "e2e"), filepath.Join("..", "loadgen")} {
		for name, f := range parseDir(t, fset, dir) {
			ast.Inspect(f, func(n ast.Node) bool {
				// Go's reference time is a layout, not a date.
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && dateLiteral.MatchString(lit.Value) && !strings.Contains(lit.Value, "2006-01-02") {
					t.Errorf("%s:%d: a fixed date in a test of a live binary: %s", filepath.Join(dir, name), fset.Position(lit.Pos()).Line, lit.Value)
				}
				return true
			})
		}
	}
}

// The guard itself, on the shapes it must tell apart.
func TestAnalyse(t *testing.T) {
	t.Parallel()
	const helpers = `package p
var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
type rcv struct{ clock *fakeClock }
func newTestReceiver() *rcv { return &rcv{clock: &fakeClock{now: testNow}} }
func newLiveReceiver() *rcv { return &rcv{clock: &fakeClock{now: time.Now()}} }
func runPlaybook() []byte { out, _ := exec.Command("ansible-playbook", "site.yml").Output(); return out }
func (r *rcv) post(b []byte) {}
`
	tests := []struct {
		name, src string
		flagged   bool
	}{
		{name: "fixed clock, live tool output (the fault of 2026-11-28)", flagged: true, src: `
func TestReal(t *testing.T) { tr := newTestReceiver(); tr.post(runPlaybook()) }`},
		{name: "fixed clock reached through a method, live tool direct", flagged: true, src: `
func (r *rcv) pinned() time.Time { return testNow }
func TestReal(t *testing.T) { r := &rcv{}; _ = r.pinned(); exec.CommandContext(ctx, "x") }`},
		{name: "fixed clock, built binary", flagged: true, src: `
func TestBinary(t *testing.T) { _ = testclock.Now(); collectorproc.Start(t, "bin") }`},
		{name: "clock derived from the live data", flagged: false, src: `
func TestReal(t *testing.T) { out := runPlaybook(); tr := newTestReceiver(); tr.clock.Set(testclock.DerivedFrom(first(out))); tr.post(out) }`},
		{name: "real clock, live data", flagged: false, src: `
func TestReal(t *testing.T) { tr := newLiveReceiver(); tr.post(runPlaybook()) }`},
		{name: "fixed clock, fixed data", flagged: false, src: `
func TestGolden(t *testing.T) { tr := newTestReceiver(); tr.post([]byte("{}")) }`},
		{name: "a helper that is not a test", flagged: false, src: `
func helperTestLike() { tr := newTestReceiver(); tr.post(runPlaybook()) }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fset := token.NewFileSet()
			h, err := parser.ParseFile(fset, "helpers_test.go", helpers, 0)
			require.NoError(t, err)
			f, err := parser.ParseFile(fset, "x_test.go", "package p\n"+tt.src, 0)
			require.NoError(t, err)
			bad := analyse(fset, map[string]*ast.File{"helpers_test.go": h, "x_test.go": f})
			if tt.flagged {
				assert.NotEmpty(t, bad)
			} else {
				assert.Empty(t, bad)
			}
		})
	}
}

func TestParseShift(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "0s", "400d": "9600h0m0s", "-2d": "-48h0m0s", "-36h": "-36h0m0s", " 90m ": "1h30m0s"} {
		d, err := ParseShift(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, d.String(), in)
	}
	for _, in := range []string{"400", "d", "4.5d", "ahead"} {
		_, err := ParseShift(in)
		assert.Error(t, err, in)
	}
}
