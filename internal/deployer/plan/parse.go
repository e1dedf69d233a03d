package plan

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// parser walks the YAML node tree rather than decoding into structs, so
// that every error names the field and its line, and unknown fields are
// refused instead of ignored.
type parser struct {
	file string
	errs Errors
}

func (p *parser) fail(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Parse parses plan YAML; file names the source in errors. It returns
// Errors listing every problem found.
func Parse(file string, data []byte) (*Plan, error) {
	p := &parser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml.v3 syntax errors read "yaml: line N: ..."; keep its line.
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if num, tail, ok := strings.Cut(rest, ": "); ok {
				if n, convErr := strconv.Atoi(num); convErr == nil {
					line, msg = n, tail
				}
			}
		}
		if strings.Contains(msg, "tab character") {
			// yaml.v3 names the line of the mapping the tab breaks, not
			// the tab's: point at the first tab-indented line from there.
			line = tabLine(data, line)
		}
		return nil, Errors{{File: file, Line: line, Msg: "invalid YAML: " + msg}}
	}
	if len(doc.Content) == 0 {
		return nil, Errors{{File: file, Msg: "empty plan"}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, Errors{{File: file, Line: root.Line, Msg: "a plan is a mapping with service, environment and steps"}}
	}
	plan := &Plan{}
	var stepsNode *yaml.Node
	var envNode *yaml.Node
	p.mapping(root, "", func(key string, k, v *yaml.Node) {
		switch key {
		case "service":
			plan.Service = p.str(v, key)
		case "environment":
			plan.Environment = p.str(v, key)
		case "revision":
			plan.Revision = p.str(v, key)
		case "revision_time":
			plan.RevisionTime = p.timestamp(v, key)
		case "timeout":
			plan.Timeout = p.duration(v, key)
		case "env":
			envNode = v
		case "vars":
			plan.Vars = p.vars(v)
		case "steps":
			stepsNode = v
		default:
			p.fail(k, key, "unknown field (want service, environment, revision, revision_time, timeout, env, vars, steps)")
		}
	})
	if plan.Service == "" {
		p.requireIn(root, "service")
	}
	if plan.Environment == "" {
		p.requireIn(root, "environment")
	}
	declared := make(map[string]bool, len(plan.Vars))
	for _, v := range plan.Vars {
		declared[v.Name] = true
	}
	if envNode != nil {
		plan.Env = p.env(envNode, "env", declared)
	}
	if stepsNode == nil {
		p.fail(root, "steps", "required: a plan needs at least one step")
	} else {
		plan.Steps = p.steps(stepsNode, declared)
	}
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return plan, nil
}

// tabLine returns the first line at or after from whose indentation holds
// a tab, or from when there is none.
func tabLine(data []byte, from int) int {
	for i, l := range strings.Split(string(data), "\n") {
		if i+1 < from {
			continue
		}
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if strings.Contains(indent, "\t") {
			return i + 1
		}
	}
	return from
}

func (p *parser) requireIn(root *yaml.Node, field string) {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == field {
			if v := root.Content[i+1]; v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
				p.fail(v, field, "must not be empty")
			}
			return
		}
	}
	p.fail(root, field, "required")
}

// mapping calls fn for each key of a mapping node, refusing duplicates.
func (p *parser) mapping(n *yaml.Node, field string, fn func(key string, k, v *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		p.fail(n, field, "must be a mapping, got %s", kindName(n))
		return false
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := join(field, k.Value)
		if seen[k.Value] {
			p.fail(k, name, "duplicate key")
			continue
		}
		seen[k.Value] = true
		fn(k.Value, k, v)
	}
	return true
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if n.Tag == "!!null" {
		return "nothing"
	}
	return "a scalar"
}

func (p *parser) str(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.fail(n, field, "must be a string, got %s", kindName(n))
		return ""
	}
	return n.Value
}

// timestamp reads an RFC 3339 time with its zone.
func (p *parser) timestamp(n *yaml.Node, field string) *time.Time {
	s := p.str(n, field)
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		p.fail(n, field, "must be an RFC 3339 time with zone such as 2026-11-27T10:00:00Z, got %q", s)
		return nil
	}
	return &t
}

func (p *parser) boolean(n *yaml.Node, field string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		p.fail(n, field, "must be true or false, got %q", n.Value)
		return false
	}
	return b
}

// duration accepts Go durations ("90s", "5m") or whole seconds.
func (p *parser) duration(n *yaml.Node, field string) time.Duration {
	s := p.str(n, field)
	if s == "" {
		return 0
	}
	if n.Tag == "!!int" {
		secs, err := strconv.Atoi(s)
		if err == nil && secs > 0 {
			return time.Duration(secs) * time.Second
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		p.fail(n, field, "must be a positive duration such as 90s or 5m, got %q", s)
		return 0
	}
	return d
}

func (p *parser) refs(n *yaml.Node, field, s string, declared map[string]bool) {
	for _, m := range varRef.FindAllStringSubmatch(s, -1) {
		if !declared[m[1]] {
			p.fail(n, field, "unknown variable ${%s}: declare it under vars", m[1])
		}
	}
}

func (p *parser) env(n *yaml.Node, field string, declared map[string]bool) []EnvVar {
	var out []EnvVar
	p.mapping(n, field, func(key string, k, v *yaml.Node) {
		name := join(field, key)
		if !validEnvName(key) {
			p.fail(k, name, "not a valid environment variable name")
			return
		}
		val := p.str(v, name)
		p.refs(v, name, val, declared)
		out = append(out, EnvVar{Name: key, Value: val})
	})
	return out
}

func validEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (p *parser) vars(n *yaml.Node) []Var {
	var out []Var
	p.mapping(n, "vars", func(key string, k, v *yaml.Node) {
		field := join("vars", key)
		if !validEnvName(key) {
			p.fail(k, field, "variable names are letters, digits and _ (they become environment variables)")
			return
		}
		vr := Var{Name: key, Line: k.Line, Secret: LooksSecret(key)}
		switch v.Kind {
		case yaml.ScalarNode:
			if v.Tag != "!!null" {
				vr.Default = v.Value
			}
		case yaml.MappingNode:
			p.mapping(v, field, func(attr string, ak, av *yaml.Node) {
				switch attr {
				case "default":
					vr.Default = p.str(av, join(field, attr))
				case "secret":
					vr.Secret = p.boolean(av, join(field, attr)) || vr.Secret
				case "required":
					vr.Required = p.boolean(av, join(field, attr))
				case "env":
					vr.FromEnv = p.str(av, join(field, attr))
					if !validEnvName(vr.FromEnv) {
						p.fail(av, join(field, attr), "not a valid environment variable name")
					}
				case "file":
					vr.FromFile = p.str(av, join(field, attr))
					if vr.FromFile == "" {
						p.fail(av, join(field, attr), "must name a file")
					}
				default:
					p.fail(ak, join(field, attr), "unknown field (want default, secret, required, env, file)")
				}
			})
			if vr.FromEnv != "" && vr.FromFile != "" {
				p.fail(v, field, "env and file are exclusive: the value comes from one place")
			}
		default:
			p.fail(v, field, "must be a default value or a mapping with default, secret, required, env, file")
		}
		out = append(out, vr)
	})
	return out
}

func (p *parser) steps(n *yaml.Node, declared map[string]bool) []Step {
	if n.Kind != yaml.SequenceNode {
		p.fail(n, "steps", "must be a list of steps, got %s", kindName(n))
		return nil
	}
	if len(n.Content) == 0 {
		p.fail(n, "steps", "a plan needs at least one step")
	}
	out := make([]Step, 0, len(n.Content))
	for i, sn := range n.Content {
		out = append(out, p.step(sn, fmt.Sprintf("steps[%d]", i), declared))
	}
	return out
}

func (p *parser) step(n *yaml.Node, field string, declared map[string]bool) Step {
	s := Step{Line: n.Line}
	var kinds []string
	p.mapping(n, field, func(key string, k, v *yaml.Node) {
		name := join(field, key)
		switch key {
		case "name":
			s.Name = p.str(v, name)
			if len(s.Name) > 256 {
				p.fail(v, name, "longer than 256 bytes")
			}
		case "run":
			kinds = append(kinds, key)
			s.Run = p.str(v, name)
			if strings.TrimSpace(s.Run) == "" {
				p.fail(v, name, "must not be empty")
			}
		case "command":
			kinds = append(kinds, key)
			s.Command = p.strList(v, name, declared)
			if v.Kind == yaml.SequenceNode && len(s.Command) == 0 {
				p.fail(v, name, "must be a non-empty list: the program and its arguments")
			}
		case "ansible":
			kinds = append(kinds, key)
			s.Ansible = p.ansible(v, name, declared)
		case "timeout":
			s.Timeout = p.duration(v, name)
		case "continue_on_error":
			s.ContinueOnError = p.boolean(v, name)
		case "env":
			s.Env = p.env(v, name, declared)
		case "dir":
			s.Dir = p.str(v, name)
			p.refs(v, name, s.Dir, declared)
		default:
			p.fail(k, name, "unknown field (want name, run, command, ansible, timeout, continue_on_error, env, dir)")
		}
	})
	if n.Kind != yaml.MappingNode {
		return s
	}
	if s.Name == "" {
		p.fail(n, join(field, "name"), "required")
	}
	switch len(kinds) {
	case 0:
		p.fail(n, field, "needs one of run, command or ansible")
	case 1:
	default:
		p.fail(n, field, "has %s: give only one of run, command or ansible", strings.Join(kinds, " and "))
	}
	return s
}

func (p *parser) strList(n *yaml.Node, field string, declared map[string]bool) []string {
	if n.Kind != yaml.SequenceNode {
		p.fail(n, field, "must be a list of strings, got %s", kindName(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, e := range n.Content {
		name := fmt.Sprintf("%s[%d]", field, i)
		v := p.str(e, name)
		p.refs(e, name, v, declared)
		out = append(out, v)
	}
	return out
}

func (p *parser) ansible(n *yaml.Node, field string, declared map[string]bool) *Ansible {
	a := &Ansible{}
	ok := p.mapping(n, field, func(key string, k, v *yaml.Node) {
		name := join(field, key)
		switch key {
		case "playbook":
			a.Playbook = p.str(v, name)
			p.refs(v, name, a.Playbook, declared)
		case "inventory":
			a.Inventory = p.str(v, name)
			p.refs(v, name, a.Inventory, declared)
		case "limit":
			a.Limit = p.str(v, name)
			p.refs(v, name, a.Limit, declared)
		case "extra_vars":
			if v.Kind != yaml.MappingNode {
				p.fail(v, name, "must be a mapping of variable names to values, got %s", kindName(v))
				return
			}
			var m map[string]any
			if err := v.Decode(&m); err != nil {
				p.fail(v, name, "%v", err)
				return
			}
			p.anyRefs(v, name, declared)
			a.ExtraVars = m
		case "args":
			a.Args = p.strList(v, name, declared)
		default:
			p.fail(k, name, "unknown field (want playbook, inventory, limit, extra_vars, args)")
		}
	})
	if ok && a.Playbook == "" {
		p.fail(n, join(field, "playbook"), "required")
	}
	return a
}

func (p *parser) anyRefs(n *yaml.Node, field string, declared map[string]bool) {
	if n.Kind == yaml.ScalarNode {
		p.refs(n, field, n.Value, declared)
		return
	}
	for _, c := range n.Content {
		p.anyRefs(c, field, declared)
	}
}
