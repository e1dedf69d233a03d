package deploymetricsconnector

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// stepNamer applies the step_names rules, caching results because the same
// few step names repeat in every deployment and regexps are costly.
type stepNamer struct {
	rules     []compiledRule
	maxLength int
	cache     map[string]string
}

type compiledRule struct {
	re          *regexp.Regexp
	replacement string
}

// stepNameCacheSize bounds the cache; it is emptied when full, so hostile
// input costs time, never memory.
const stepNameCacheSize = 4096

func newStepNamer(cfg StepNamesConfig) (*stepNamer, error) {
	n := &stepNamer{maxLength: cfg.MaxLength, cache: make(map[string]string)}
	for _, r := range cfg.Rules {
		re, err := regexp.Compile(r.Pattern)
		if err != nil {
			return nil, err
		}
		n.rules = append(n.rules, compiledRule{re: re, replacement: r.Replacement})
	}
	return n, nil
}

func (n *stepNamer) normalize(name string) string {
	if v, ok := n.cache[name]; ok {
		return v
	}
	out := name
	for _, r := range n.rules {
		out = r.re.ReplaceAllString(out, r.replacement)
	}
	if n.maxLength > 0 && len(out) > n.maxLength {
		cut := n.maxLength
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = out[:cut]
	}
	out = strings.Clone(out)
	if len(n.cache) >= stepNameCacheSize {
		clear(n.cache)
	}
	n.cache[strings.Clone(name)] = out
	return out
}
