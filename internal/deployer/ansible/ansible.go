// Package ansible runs ansible-playbook for `ansible` steps with a stdout
// callback whose lines the collector's receiver accepts on /v1/ansible:
// by default the bundled fastdeploy_json_cb plugin (callback/, embedded in
// the binary), or Ansible's stock ansible.posix.jsonl. It turns those lines
// into the human-readable progress the terminal shows.
package ansible

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// JSONLCallback is Ansible's stock JSON-lines stdout callback; it ships
// with Debian's ansible package (collection ansible.posix).
const JSONLCallback = "ansible.posix.jsonl"

// Args builds the ansible-playbook argument list. Extra variables travel
// in a file (@path) so their values never show in the process list.
func Args(playbook, inventory, limit, extraVarsFile string, extra []string) []string {
	var args []string
	if inventory != "" {
		args = append(args, "-i", inventory)
	}
	if limit != "" {
		args = append(args, "--limit", limit)
	}
	if extraVarsFile != "" {
		args = append(args, "--extra-vars", "@"+extraVarsFile)
	}
	args = append(args, extra...)
	return append(args, playbook)
}

// Line is what the terminal needs from one ansible.posix.jsonl line.
type Line struct {
	Event   string // the callback's _event
	Play    string
	Task    string
	Handler bool
	// Results per host, for runner events.
	Results []HostResult
	// Recap per host, for v2_playbook_on_stats.
	Recap map[string]map[string]int
}

// HostResult is one host's outcome of a task.
type HostResult struct {
	Host    string
	Status  string // ok, changed, failed, skipped, unreachable
	Message string
	Items   int // loop items, 0 without a loop
}

// Parse reads one line of ansible.posix.jsonl output; ok is false for lines that are
// not callback JSON (warnings, or output of a misconfigured callback).
func Parse(raw []byte) (Line, bool) {
	var l struct {
		Event string `json:"_event"`
		Play  struct {
			Name string `json:"name"`
		} `json:"play"`
		Task struct {
			Name string `json:"name"`
		} `json:"task"`
		Hosts map[string]map[string]any `json:"hosts"`
		Stats map[string]map[string]int `json:"stats"`
	}
	if err := json.Unmarshal(raw, &l); err != nil || l.Event == "" {
		return Line{}, false
	}
	out := Line{Event: l.Event, Play: l.Play.Name, Task: l.Task.Name, Recap: l.Stats,
		Handler: l.Event == "v2_playbook_on_handler_task_start"}
	hosts := make([]string, 0, len(l.Hosts))
	for h := range l.Hosts {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		res := l.Hosts[h]
		hr := HostResult{Host: h, Status: status(l.Event, res)}
		if items, ok := res["results"].([]any); ok {
			hr.Items = len(items)
		}
		if hr.Status == "failed" || hr.Status == "unreachable" {
			hr.Message = message(res)
		}
		out.Results = append(out.Results, hr)
	}
	return out, true
}

func status(event string, res map[string]any) string {
	switch event {
	case "v2_runner_on_failed":
		return "failed"
	case "v2_runner_on_unreachable":
		return "unreachable"
	case "v2_runner_on_skipped":
		return "skipped"
	}
	if changed, _ := res["changed"].(bool); changed {
		return "changed"
	}
	return "ok"
}

func message(res map[string]any) string {
	var parts []string
	if m, ok := res["msg"].(string); ok && m != "" {
		parts = append(parts, m)
	}
	if s, ok := res["stderr"].(string); ok && s != "" {
		parts = append(parts, strings.TrimSpace(s))
	}
	return strings.Join(parts, ": ")
}

// Format renders l as terminal lines, like Ansible's default callback but
// shorter.
func Format(l Line) []string {
	switch l.Event {
	case "v2_playbook_on_play_start":
		return []string{"PLAY " + l.Play}
	case "v2_playbook_on_stats":
		hosts := make([]string, 0, len(l.Recap))
		for h := range l.Recap {
			hosts = append(hosts, h)
		}
		sort.Strings(hosts)
		out := make([]string, 0, len(hosts))
		for _, h := range hosts {
			s := l.Recap[h]
			out = append(out, fmt.Sprintf("RECAP %s ok=%d changed=%d failed=%d skipped=%d unreachable=%d ignored=%d",
				h, s["ok"], s["changed"], s["failures"], s["skipped"], s["unreachable"], s["ignored"]))
		}
		return out
	}
	var out []string
	for _, r := range l.Results {
		s := fmt.Sprintf("%-9s [%s] %s", r.Status+":", r.Host, l.Task)
		if r.Items > 0 {
			s += fmt.Sprintf(" (%d items)", r.Items)
		}
		if r.Message != "" {
			s += ": " + r.Message
		}
		out = append(out, s)
	}
	return out
}

// Failure summarises the first failed or unreachable host result, for the
// step's message.
func (l Line) Failure() string {
	for _, r := range l.Results {
		if r.Status == "failed" || r.Status == "unreachable" {
			msg := fmt.Sprintf("task %q %s on %s", l.Task, r.Status, r.Host)
			if r.Message != "" {
				msg += ": " + r.Message
			}
			return msg
		}
	}
	return ""
}
