// Package plan reads and checks fastdeploy deployment plans: a YAML file that
// names the service, its environment, variables and ordered steps. Errors
// carry the file line of the offending field so `fastdeploy validate` can
// point at it.
package plan

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

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

// Var is a declared plan variable. Callers give values with --var.
type Var struct {
	Name     string
	Default  string
	Secret   bool
	Required bool
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

// Resolve returns the plan's variable values after applying overrides
// (from --var), and the set of values to mask. Undeclared overrides and
// required variables left without a value are errors.
func (p *Plan) Resolve(overrides map[string]string) (map[string]string, error) {
	declared := make(map[string]bool, len(p.Vars))
	values := make(map[string]string, len(p.Vars))
	var errs []error
	for _, v := range p.Vars {
		declared[v.Name] = true
		if o, ok := overrides[v.Name]; ok {
			values[v.Name] = o
			continue
		}
		if v.Required {
			errs = append(errs, fmt.Errorf("variable %s is required: pass --var %s=...", v.Name, v.Name))
			continue
		}
		values[v.Name] = v.Default
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
