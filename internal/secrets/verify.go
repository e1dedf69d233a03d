package secrets

import "strings"

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
	if isPublishableConfig(text) {
		return 0, 0, false
	}
	return start, end, true
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
	return start, end, true
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
