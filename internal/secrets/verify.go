package secrets

import (
	"encoding/base64"
	"strings"
)

// splitAWSKey: the two parts of a wrapped key make exactly 40 characters.
func splitAWSKey(text string, m []int, _ *keyClassifier) (int, int, bool) {
	start, end, _ := lastGroup(m)
	n := 0
	for i := start; i < end; i++ {
		if isAlnum(text[i]) || text[i] == '/' || text[i] == '+' {
			n++
		}
	}
	return start, end, n == 40
}

// notPublishable: a Google API key in a Firebase web configuration is
// public by design (it ships in every page); elsewhere it is a secret.
func notPublishable(text string, m []int, _ *keyClassifier) (int, int, bool) {
	start, end, _ := lastGroup(m)
	if isPublishableConfig(around(text, start)) {
		return 0, 0, false
	}
	return start, end, true
}

// around is the text within a bounded distance of i: context checks must
// not read the whole text for every match.
func around(text string, i int) string {
	const radius = 1024
	return text[max(0, i-radius):min(len(text), i+radius)]
}

func isPublishableConfig(text string) bool {
	return strings.Contains(text, "messagingSenderId") || strings.Contains(text, ".firebaseapp.com") ||
		strings.Contains(text, "messaging_sender_id")
}

// pipedLiteral: echo LITERAL | base64; not a variable or a file name.
func pipedLiteral(text string, m []int, kc *keyClassifier) (int, int, bool) {
	start, end, ok := notPlaceholder(text, m, kc)
	if !ok || end-start < 6 || strings.ContainsAny(text[start:end], "$`") {
		return 0, 0, false
	}
	// Decoded, a sentence is a message being passed around, not a
	// credential; what does not decode stays suspect.
	if decodesPipe(text[m[1]:]) {
		if dec, err := decodeBase64(text[start:end]); err == nil && mostlyPrintable(dec) && isProse(string(dec)) {
			return 0, 0, false
		}
	}
	return start, end, true
}

// decodesPipe: the base64 that the literal is piped into decodes (-d,
// --decode, -D).
func decodesPipe(after string) bool {
	after = strings.TrimLeft(after, " \t")
	for _, f := range []string{"-d", "--decode", "-D"} {
		if rest, ok := strings.CutPrefix(after, f); ok && (rest == "" || strings.IndexByte(" \t|;&>)'\"", rest[0]) >= 0) {
			return true
		}
	}
	return false
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// highEntropy wants letters and digits mixed, as generated tokens are.
func highEntropy(text string, m []int, _ *keyClassifier) (int, int, bool) {
	start, end, _ := lastGroup(m)
	var lower, upper, digit bool
	for i := start; i < end; i++ {
		c := text[i]
		lower = lower || isLower(c)
		upper = upper || isUpper(c)
		digit = digit || isDigit(c)
	}
	classes := 0
	for _, b := range []bool{lower, upper, digit} {
		if b {
			classes++
		}
	}
	return start, end, classes >= 2 && digit
}

// xmlElementStart: the key-like word is a tag name, "<password>".
func xmlElementStart(text string, keyStart, runEnd int) bool {
	return keyStart > 0 && text[keyStart-1] == '<' && runEnd < len(text) && text[runEnd] == '>'
}

// xmlElement: <password>x</password> (Maven settings.xml, server configs).
func xmlElement(text string, m []int, kc *keyClassifier) (int, int, bool) {
	open, closing := text[m[2]:m[3]], text[m[6]:m[7]]
	if open != closing || !kc.IsSecret(open) {
		return 0, 0, false
	}
	start, end := m[4], m[5]
	if isPlaceholder(text[start:end]) {
		return 0, 0, false
	}
	// Short numbers are lifetimes and counts, unless the element is a password.
	if v := text[start:end]; len(v) <= 5 && isAllDigits(v) && !strings.Contains(strings.ToLower(open), "pass") && !strings.Contains(strings.ToLower(open), "pwd") {
		return 0, 0, false
	}
	return start, end, true
}

// longQuotedValue: a secret key whose quoted value is longer than the
// anchored window; the value ends at the closing quote on the same line.
func longQuotedValue(text string, keyStart, runEnd int, kc *keyClassifier) (int, int, bool) {
	if !kc.IsSecret(strings.TrimLeft(text[keyStart:runEnd], "-._")) {
		return 0, 0, false
	}
	i := skipQuoteMark(text, runEnd)
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	if i >= len(text) || (text[i] != '=' && text[i] != ':') {
		return 0, 0, false
	}
	i++
	if i < len(text) && text[i] == '=' { // :=
		i++
	}
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	for i < len(text) && text[i] == '\\' {
		i++
	}
	if i >= len(text) || (text[i] != '"' && text[i] != '\'') {
		return 0, 0, false
	}
	q := text[i]
	start := i + 1
	end := start
	for end < len(text) && text[end] != q && text[end] != '\n' {
		end++
	}
	for end > start && text[end-1] == '\\' {
		end--
	}
	return start, end, end > start
}

// maxURLPassword bounds the password scanned after each "://".
const maxURLPassword = 256

// findURLSlashPassword finds scheme://user:pa/ss@host, whose password holds
// an unencoded "/" that url_credentials stops at. The part before the first
// "/" must not be a port (host:8443/path/@me).
func findURLSlashPassword(text string, from int, _ Scanner) (start, end, next int) {
	for from < len(text) {
		i := strings.Index(text[from:], "://")
		if i < 0 {
			return -1, 0, len(text)
		}
		at := from + i
		from = at + 3
		if at == 0 || !(isLower(text[at-1]) || isUpper(text[at-1]) || isDigit(text[at-1])) {
			continue
		}
		j := from
		for j < len(text) && j-from < maxURLPassword && !strings.ContainsRune(" \t\n:/?#@\"'<>[]", rune(text[j])) {
			j++
		}
		if j >= len(text) || text[j] != ':' {
			continue
		}
		ps := j + 1
		k, slash := ps, -1
		for k < len(text) && k-ps < maxURLPassword && !strings.ContainsRune(" \t\n\"'<>@", rune(text[k])) {
			if text[k] == '/' && slash < 0 {
				slash = k
			}
			k++
		}
		// the password runs to the last "@" before a blank
		last := -1
		for k < len(text) && text[k] == '@' && k-ps < maxURLPassword {
			last = k
			k++
			for k < len(text) && k-ps < maxURLPassword && !strings.ContainsRune(" \t\n\"'<>@", rune(text[k])) {
				if text[k] == '/' && slash < 0 {
					slash = k
				}
				k++
			}
		}
		if last < 0 || slash < 0 || slash > last || slash == ps || isAllDigits(text[ps:slash]) || text[last-1] == '/' ||
			last+1 >= len(text) || !(isAlnum(text[last+1]) || text[last+1] == '[') {
			continue
		}
		if isPlaceholder(text[ps:last]) {
			continue
		}
		return ps, last, last
	}
	return -1, 0, len(text)
}
