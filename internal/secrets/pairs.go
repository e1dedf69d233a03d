package secrets

import "strings"

// findNamedValue finds values named by a sibling field: Kubernetes env
// entries (- name: DB_PASSWORD / value: x, across lines), JSON
// {"name": "API_TOKEN", "value": "x"}, Ansible dict items {key: db_pass,
// value: x} and NuGet/.NET <add key="ClearTextPassword" value="x" />. It
// starts at each "value" field and looks back over separators for the
// name.
func findNamedValue(text string, from int, sc Scanner) (start, end, next int) {
	for from < len(text) {
		i := indexFold(text[from:], "value")
		if i < 0 {
			return -1, 0, len(text)
		}
		at := from + i
		from = at + len("value")
		if at > 0 && isWordByte(text[at-1]) || from < len(text) && isWordByte(text[from]) {
			continue
		}
		vs, ve, ok := valueAfterSeparator(text, from)
		if !ok {
			continue
		}
		name, ok := nameBefore(text, at)
		if !ok || !sc.IsSecretKey(name) {
			continue
		}
		if isPlaceholder(text[vs:ve]) {
			continue
		}
		return vs, ve, ve
	}
	return -1, 0, len(text)
}

// valueAfterSeparator reads `"?\s*[:=]\s*VALUE` after a field name: a
// quoted value (plain or escaped quotes) or a bare one to the end of the
// line or a separator.
func valueAfterSeparator(text string, i int) (int, int, bool) {
	i = skipQuoteMark(text, i)
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	if i >= len(text) || (text[i] != ':' && text[i] != '=') {
		return 0, 0, false
	}
	i++
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	esc := 0
	for i+esc < len(text) && text[i+esc] == '\\' {
		esc++
	}
	if i+esc < len(text) && (text[i+esc] == '"' || text[i+esc] == '\'') {
		q := text[i+esc]
		vs := i + esc + 1
		for j := vs; j < len(text) && text[j] != '\n'; j++ {
			if text[j] == q {
				ve := j
				for ve > vs && text[ve-1] == '\\' && esc > 0 {
					ve--
				}
				if esc == 0 && j > vs && text[j-1] == '\\' {
					continue // an escaped quote inside the value
				}
				return vs, ve, ve > vs
			}
		}
		return 0, 0, false
	}
	vs := i
	for i < len(text) && text[i] != '\n' && text[i] != '\r' && text[i] != ',' && text[i] != '}' && text[i] != ']' && text[i] != '"' && text[i] != '\\' && text[i] != ' ' {
		i++
	}
	return vs, i, i > vs
}

// nameBefore reads, backwards from a "value" field, separators then
// `(name|key)"?\s*[:=]\s*"?NAME"?`.
func nameBefore(text string, at int) (string, bool) {
	i := at
	limit := max(0, at-256)
	// separators between the pair: blanks, commas, newlines (also escaped),
	// a YAML list dash, quotes, "{".
	for i > limit {
		c := text[i-1]
		if c == ' ' || c == '\t' || c == ',' || c == '\n' || c == '\r' || c == '"' || c == '\'' || c == '\\' || c == '{' || c == '-' {
			i--
			continue
		}
		if c == 'n' && i >= 2 && text[i-2] == '\\' {
			i -= 2
			continue
		}
		break
	}
	if i == at {
		return "", false
	}
	ne := i
	for i > limit && (isKeyByte(text[i-1]) || text[i-1] == '/') {
		i--
	}
	ns := i
	if ns == ne {
		return "", false
	}
	// quote, blanks, separator, blanks, quote, then name|key
	i = ns
	for i > limit && (text[i-1] == '"' || text[i-1] == '\'' || text[i-1] == '\\') {
		i--
	}
	for i > limit && (text[i-1] == ' ' || text[i-1] == '\t') {
		i--
	}
	if i <= limit || (text[i-1] != ':' && text[i-1] != '=') {
		return "", false
	}
	i--
	for i > limit && (text[i-1] == ' ' || text[i-1] == '\t' || text[i-1] == '"' || text[i-1] == '\'' || text[i-1] == '\\') {
		i--
	}
	for _, w := range []string{"name", "key"} {
		if i >= len(w) && strings.EqualFold(text[i-len(w):i], w) && (i == len(w) || !isWordByte(text[i-len(w)-1])) {
			return text[ns:ne], true
		}
	}
	return "", false
}

func skipQuoteMark(text string, i int) int {
	for i < len(text) && text[i] == '\\' {
		i++
	}
	if i < len(text) && (text[i] == '"' || text[i] == '\'') {
		i++
	}
	return i
}

// indexFold is strings.Index for an ASCII lower-case needle, ignoring case.
func indexFold(s, lowerNeedle string) int {
	n := len(lowerNeedle)
	for i := 0; i+n <= len(s); i++ {
		if lowerByte(s[i]) == lowerNeedle[0] && strings.EqualFold(s[i:i+n], lowerNeedle) {
			return i
		}
	}
	return -1
}
