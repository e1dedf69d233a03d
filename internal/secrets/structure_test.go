package secrets

import "testing"

func TestListSeparator(t *testing.T) {
	tests := []struct {
		name, key, first, want string
	}{
		{"argv key, any first element", "cmd", "echo hello", " "},
		{"ansible raw params", "_raw_params", "", " "},
		{"semconv command args", "process.command_args", "x y", " "},
		{"program path first", "", "/usr/bin/mysql", " "},
		{"bare program first", "lines", "curl", " "},
		{"near miss: blank in first", "stdout_lines", "total 12", "\n"},
		{"near miss: quote in first", "", `"x"`, "\n"},
		{"near miss: empty first", "", "", "\n"},
		{"near miss: key only like argv", "argvs", "a b", "\n"},
		{"near miss: over-long first", "", string(make([]byte, 257)), "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ListSeparator(tt.key, tt.first); got != tt.want {
				t.Errorf("ListSeparator(%q, %q) = %q, want %q", tt.key, tt.first, got, tt.want)
			}
		})
	}
}

func TestValueNamedBySibling(t *testing.T) {
	e := newEngine(t, Options{})
	lookup := func(m map[string]any) func(string) (string, bool) {
		return func(f string) (string, bool) { s, ok := m[f].(string); return s, ok }
	}
	tests := []struct {
		name string
		m    map[string]any
		want bool
	}{
		{"env entry", map[string]any{"name": "DB_PASSWORD", "value": "x"}, true},
		{"dict item", map[string]any{"key": "api_token", "value": "x"}, true},
		{"capitalised", map[string]any{"Name": "client_secret", "value": "x"}, true},
		{"near miss: plain name", map[string]any{"name": "DB_HOST", "value": "x"}, false},
		{"near miss: name not a string", map[string]any{"name": 1, "value": "x"}, false},
		{"near miss: other field names it", map[string]any{"label": "password", "value": "x"}, false},
		{"near miss: a record, not a pair", map[string]any{
			"name": "password", "value": "x", "a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7,
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.ValueNamedBySibling(len(tt.m), lookup(tt.m)); got != tt.want {
				t.Errorf("ValueNamedBySibling(%v) = %v, want %v", tt.m, got, tt.want)
			}
		})
	}
}
