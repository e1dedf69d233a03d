// Package keywords finds, in one pass over a text, which groups of
// case-insensitive keywords occur in it (an Aho-Corasick automaton with a
// dense, byte-class compressed transition table).
package keywords

import (
	"errors"
	"strings"
)

// MaxGroups is how many distinct groups (rules) a Matcher can report.
const MaxGroups = 256

// Set is a bit set of group indexes.
type Set [MaxGroups / 64]uint64

// Add sets bit i.
func (s *Set) Add(i int) { s[i>>6] |= 1 << (uint(i) & 63) }

// Has reports whether bit i is set.
func (s *Set) Has(i int) bool { return s[i>>6]&(1<<(uint(i)&63)) != 0 }

// Empty reports whether no bit is set.
func (s *Set) Empty() bool {
	for _, w := range s {
		if w != 0 {
			return false
		}
	}
	return true
}

func (s *Set) or(o *Set) {
	for i := range s {
		s[i] |= o[i]
	}
}

// Matcher is immutable after New and safe for concurrent use.
type Matcher struct {
	class  [256]uint8
	nclass int
	// delta: state*nclass+class -> next state*nclass (premultiplied), bit
	// complemented (negative) when a keyword ends in the next state, so the
	// scan loop does one table load per byte.
	delta  []int32
	outIdx []int32 // state*nclass -> index into outs, 0 = no keyword ends here
	outs   []Set
}

// New builds a matcher; keywords[g] are the keywords of group g. Keywords
// are ASCII case-insensitive.
func New(keywords [][]string) (*Matcher, error) {
	if len(keywords) > MaxGroups {
		return nil, errors.New("too many keyword groups")
	}
	m := &Matcher{}
	// Byte classes: one per distinct (lower-cased) keyword byte, 0 for the rest.
	var cls [256]uint8
	n := 1
	for _, group := range keywords {
		for _, kw := range group {
			for i := 0; i < len(kw); i++ {
				b := lower(kw[i])
				if cls[b] == 0 {
					if n == 255 {
						return nil, errors.New("too many distinct keyword bytes")
					}
					cls[b] = uint8(n)
					n++
				}
			}
		}
	}
	for b := 0; b < 256; b++ {
		m.class[b] = cls[lower(byte(b))]
	}
	m.nclass = n

	// Trie.
	type node struct {
		next []int32
		out  Set
		has  bool
	}
	newNode := func() node { return node{next: make([]int32, n)} }
	nodes := []node{newNode()}
	for g, group := range keywords {
		for _, kw := range group {
			if kw == "" {
				return nil, errors.New("empty keyword")
			}
			st := int32(0)
			for i := 0; i < len(kw); i++ {
				c := m.class[kw[i]]
				if nodes[st].next[c] == 0 {
					nodes = append(nodes, newNode())
					nodes[st].next[c] = int32(len(nodes) - 1)
				}
				st = nodes[st].next[c]
			}
			nodes[st].out.Add(g)
			nodes[st].has = true
		}
	}

	// Failure links by BFS, folded into a full transition table.
	fail := make([]int32, len(nodes))
	queue := make([]int32, 0, len(nodes))
	for c := 0; c < n; c++ {
		if s := nodes[0].next[c]; s != 0 {
			queue = append(queue, s)
		}
	}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		f := fail[st]
		if nodes[f].has {
			nodes[st].out.or(&nodes[f].out)
			nodes[st].has = true
		}
		for c := 0; c < n; c++ {
			s := nodes[st].next[c]
			if s != 0 {
				fail[s] = nodes[f].next[c]
				queue = append(queue, s)
			} else {
				nodes[st].next[c] = nodes[f].next[c]
			}
		}
	}

	m.delta = make([]int32, len(nodes)*n)
	m.outIdx = make([]int32, len(nodes)*n)
	m.outs = []Set{{}}
	seen := map[Set]int32{}
	for i, nd := range nodes {
		for c, next := range nd.next {
			m.delta[i*n+c] = next * int32(n)
			if nodes[next].has {
				m.delta[i*n+c] = ^m.delta[i*n+c]
			}
		}
		if nd.has {
			idx, ok := seen[nd.out]
			if !ok {
				idx = int32(len(m.outs))
				m.outs = append(m.outs, nd.out)
				seen[nd.out] = idx
			}
			m.outIdx[i*n] = idx
		}
	}
	return m, nil
}

// Scan adds to found the groups of every keyword that occurs in s.
func (m *Matcher) Scan(s string, found *Set) {
	st := int32(0)
	delta, class := m.delta, &m.class
	for i := 0; i < len(s); i++ {
		st = delta[st+int32(class[s[i]])]
		if st < 0 {
			st = ^st
			found.or(&m.outs[m.outIdx[st]])
		}
	}
}

// Normalize lower-cases keywords, as the matcher compares them.
func Normalize(kw string) string { return strings.ToLower(kw) }

func lower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// NextEnd returns the offset just past the first keyword occurrence in s
// that starts at or after from, or -1.
func (m *Matcher) NextEnd(s string, from int) int {
	st := int32(0)
	delta, class := m.delta, &m.class
	for i := from; i < len(s); i++ {
		st = delta[st+int32(class[s[i]])]
		if st < 0 {
			return i + 1
		}
	}
	return -1
}

// Or adds the members of o to s.
func (s *Set) Or(o *Set) { s.or(o) }
