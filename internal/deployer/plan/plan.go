// Package plan reads and checks fastdeploy deployment plans: a YAML file that
// names the service, its environment, variables and ordered steps. Errors
// carry the file line of the offending field so `fastdeploy validate` can
// point at it.
package plan

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fastdeploy/otelcol-fastdeploy/internal/secrets"
)

// Plan is a validated deployment plan.
type Plan struct {
	Service     string
	Environment string
	Revision    string
	// RevisionTime is the commit time of Revision, when the plan says it.
	RevisionTime *time.Time
	// Timeout bounds the whole deployment; zero means none.
	Timeout time.Duration
	Env     []EnvVar
	Vars    []Var
	Steps   []Step
}

// EnvVar is one environment variable, in file order so output is stable.
type EnvVar struct {
	Name  string
	Value string
}

// Var is a declared plan variable. Its value comes, first found first,
// from --var/--var-file, from the environment variable FromEnv, from the
// file FromFile, or from Default.
type Var struct {
	Name     string
	Default  string
	Secret   bool
	Required bool
	// FromEnv names an environment variable holding the value, so a secret
	// never has to be on a command line (visible to every user in ps).
	FromEnv string
	// FromFile names a file holding the value (relative to the plan);
	// one trailing newline is dropped.
	FromFile string
	Line     int
}

// Step is one unit of work run as a subprocess.
type Step struct {
	Name string
	Line int
	// Exactly one of Run, Command and Ansible is set.
	Run             string
	Command         []string
	Ansible         *Ansible
	Timeout         time.Duration
	ContinueOnError bool
	Env             []EnvVar
	Dir             string
}

// Kind names which of run, command or ansible a step uses.
func (s *Step) Kind() string {
	switch {
	case s.Ansible != nil:
		return "ansible"
	case len(s.Command) > 0:
		return "command"
	default:
		return "run"
	}
}

// Ansible describes an ansible-playbook invocation.
type Ansible struct {
	Playbook  string
	Inventory string
	Limit     string
	ExtraVars map[string]any
	// Args are extra ansible-playbook arguments, e.g. ["--check"].
	Args []string
}

// Error is one problem in a plan, located by line (0 when unknown).
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Field + ": " + e.Msg
}

// Errors is every problem found in a plan, in file order.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Load reads and parses the plan at path.
func Load(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	return Parse(path, data)
}

// LooksSecret reports whether a variable name suggests its value is a
// credential, so its value is masked in logs and output. It is the
// collector's definition (secrets.IsSecretKey), so both agree on every name.
func LooksSecret(name string) bool { return secrets.IsSecretKey(name) }

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Sources are where Resolve looks for values besides overrides.
type Sources struct {
	// Getenv reads the deployer's environment (vars with env:).
	Getenv func(string) string
	// ReadFile reads files named by vars with file:, relative to Dir.
	ReadFile func(string) ([]byte, error)
	Dir      string
}

// Resolve returns the plan's variable values after applying overrides
// (from --var), without other sources; see ResolveFrom.
func (p *Plan) Resolve(overrides map[string]string) (map[string]string, error) {
	return p.ResolveFrom(overrides, Sources{})
}

// ResolveFrom returns the plan's variable values: an override (--var,
// --var-file) first, then the variable's environment variable or file,
// then its default. Undeclared overrides, required variables left without
// a value, and required secrets whose value is empty are errors (an empty
// password is a mistake, not a choice).
func (p *Plan) ResolveFrom(overrides map[string]string, src Sources) (map[string]string, error) {
	declared := make(map[string]bool, len(p.Vars))
	values := make(map[string]string, len(p.Vars))
	var errs []error
	for _, v := range p.Vars {
		declared[v.Name] = true
		val, found, err := v.lookup(overrides, src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case found && v.Required && v.Secret && val == "":
			errs = append(errs, fmt.Errorf("variable %s is required and was given an empty value", v.Name))
		case found:
			values[v.Name] = val
		case v.Required:
			errs = append(errs, fmt.Errorf("variable %s is required: %s", v.Name, v.howToSet()))
		default:
			values[v.Name] = v.Default
		}
	}
	names := make([]string, 0, len(overrides))
	for n := range overrides {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !declared[n] {
			errs = append(errs, fmt.Errorf("--var %s: not declared in the plan's vars", n))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return values, nil
}

func (v *Var) lookup(overrides map[string]string, src Sources) (string, bool, error) {
	if o, ok := overrides[v.Name]; ok {
		return o, true, nil
	}
	if v.FromEnv != "" && src.Getenv != nil {
		if val := src.Getenv(v.FromEnv); val != "" {
			return val, true, nil
		}
	}
	if v.FromFile != "" && src.ReadFile != nil {
		path := v.FromFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(src.Dir, path)
		}
		data, err := src.ReadFile(path)
		if err != nil {
			// The error names the file, never its content.
			if inner := errors.Unwrap(err); inner != nil {
				err = inner // a PathError repeats the path; the field names it once
			}
			return "", false, fmt.Errorf("variable %s: read %s: %w", v.Name, v.FromFile, err)
		}
		val := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		return val, true, nil
	}
	return "", false, nil
}

func (v *Var) howToSet() string {
	switch {
	case v.FromEnv != "":
		return "set the environment variable " + v.FromEnv + " or pass --var " + v.Name + "=..."
	case v.Secret:
		return "set it in a --var-file or pass --var " + v.Name + "=..."
	}
	return "pass --var " + v.Name + "=..."
}

// Expand replaces ${name} references to plan variables in s. References are
// checked by Parse, so unknown names do not occur in a valid plan.
func Expand(s string, values map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if v, ok := values[name]; ok {
			return v
		}
		return m
	})
}

// ExpandAny expands references in every string inside v (maps, lists).
func ExpandAny(v any, values map[string]string) any {
	switch t := v.(type) {
	case string:
		return Expand(t, values)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = ExpandAny(e, values)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = ExpandAny(e, values)
		}
		return out
	}
	return v
}

// ReadVarFile reads variable values from a file: a YAML (or JSON) mapping
// of names to scalars, or dotenv-style NAME=VALUE lines (# comments and
// blank lines skipped, an optional "export " prefix and surrounding quotes
// dropped). Errors name the file and line, never a value.
func ReadVarFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--var-file: %w", err)
	}
	if vals, ok := dotenv(string(data)); ok {
		return vals, nil
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("--var-file %s: neither NAME=VALUE lines nor a YAML mapping", path)
	}
	vals := make(map[string]string, len(doc))
	for k, v := range doc {
		switch v.(type) {
		case map[string]any, []any:
			return nil, fmt.Errorf("--var-file %s: %s: want a scalar value", path, k)
		case nil:
			vals[k] = ""
		default:
			vals[k] = fmt.Sprint(v)
		}
	}
	return vals, nil
}

// dotenv parses NAME=VALUE lines; ok is false when a line is neither that,
// a comment nor blank.
func dotenv(text string) (map[string]string, bool) {
	vals := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		name, value, ok := strings.Cut(line, "=")
		if !ok || !validEnvName(name) {
			return nil, false
		}
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		vals[name] = value
	}
	return vals, len(vals) > 0
}
