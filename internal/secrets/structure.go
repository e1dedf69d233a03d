package secrets

// Structural rules: how a walker over structured values (telemetry
// attributes, a deployment's stored context, an event body) reads keys,
// name/value pairs and lists before it hands strings to the engine. The
// secret_redaction processor and the receiver's at-rest redaction walk
// different types with the same rules, defined here once.

// MinSecretMapKey is the shortest map key scanned for secrets: secrets
// used as keys (tokens, URLs with credentials) are long, attribute names
// are short and cost no scan.
const MinSecretMapKey = 24

// MaxSiblingScan bounds the maps whose fields are read as name/value
// pairs.
const MaxSiblingScan = 8

// siblingNameFields name a "value" field beside them.
var siblingNameFields = [...]string{"name", "key", "Name", "Key"}

// ValueNamedBySibling reports whether a map's "value" field holds a secret
// because a sibling names it: {name: DB_PASSWORD, value: x}, {key:
// api_token, value: x}. size is the map's length; field returns a
// sibling's value when it is a string. Maps larger than MaxSiblingScan are
// records, not pairs.
func (e *Engine) ValueNamedBySibling(size int, field func(name string) (string, bool)) bool {
	if size > MaxSiblingScan {
		return false
	}
	for _, f := range siblingNameFields {
		if n, ok := field(f); ok && e.IsSecretKey(n) {
			return true
		}
	}
	return false
}

// ListSeparator is how a list of strings is joined to be scanned as the
// one text it forms: by a blank when it is a command line (under an argv
// key, or led by a program name), else by a newline (lines of output).
// first is the list's first element.
func ListSeparator(key, first string) string {
	if isArgvKey(key) || looksLikeProgram(first) {
		return " "
	}
	return "\n"
}

func isArgvKey(key string) bool {
	switch key {
	case "cmd", "argv", "args", "command", "arguments", "process.command_args", "_raw_params":
		return true
	}
	return false
}

// looksLikeProgram: a path or a bare name, no blanks, quotes or line
// breaks.
func looksLikeProgram(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
