// Package keywords finds, in one pass over a text, which groups of
// case-insensitive keywords occur in it (an Aho-Corasick automaton with a
// dense, byte-class compressed transition table).
package keywords

import (
	"errors"
	"strings"
)

// startBits is the size of the table of keyword starts (32 KiB).
const startBits = 1 << 18

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
	// States are numbered breadth first, so that the root and the states
	// one and two bytes into a keyword are those up to depth1 and depth2
	// (premultiplied). From them the scan skips, in a bit table of
	// byte-class triples (starts), the positions where no keyword starts:
	// most bytes of a text cost a table test that does not wait on the
	// previous byte's state.
	depth1, depth2 int32
	// starts has bit h(b0, b1, b2) set when a keyword may start with the
	// bytes b0 b1 b2: h spreads the three byte classes over startBits bits
	// (exactly when there are at most 64 classes; else distinct triples may
	// share a bit, which only makes the scan stop where it need not).
	starts      *[startBits / 64]uint64
	first, next [256]uint32 // class(b)<<12, class(b)<<6 (masked to 6 bits)
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
	depth := []int{0}
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
					depth = append(depth, i+1)
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
	var bfs []int32
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		bfs = append(bfs, st)
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

	// Breadth-first numbering: the root, then the nodes one byte deep, ...
	order := make([]int32, 0, len(nodes))
	order = append(order, 0)
	order = append(order, bfs...)
	number := make([]int32, len(nodes))
	for newIdx, old := range order {
		number[old] = int32(newIdx)
	}
	var byDepth [3]int32
	for _, st := range bfs {
		if d := depth[st]; d <= 2 {
			byDepth[d]++
		}
	}
	m.depth1 = byDepth[1] * int32(n)
	m.depth2 = (byDepth[1] + byDepth[2]) * int32(n)
	m.starts = new([startBits / 64]uint64)
	for b := range 256 {
		m.first[b] = uint32(m.class[b]&63) << 12
		m.next[b] = uint32(m.class[b]&63) << 6
	}
	mark := func(c0, c1, c2 int) {
		bit := uint32(c0&63)<<12 | uint32(c1&63)<<6 | uint32(c2&63)
		m.starts[bit/64] |= 1 << (bit % 64)
	}
	for _, group := range keywords {
		for _, kw := range group {
			c0 := int(m.class[kw[0]])
			// Shorter keywords start wherever their bytes are, whatever follows.
			switch len(kw) {
			case 1:
				for c1 := range n {
					for c2 := range n {
						mark(c0, c1, c2)
					}
				}
			case 2:
				for c2 := range n {
					mark(c0, int(m.class[kw[1]]), c2)
				}
			default:
				mark(c0, int(m.class[kw[1]]), int(m.class[kw[2]]))
			}
		}
	}

	m.delta = make([]int32, len(nodes)*n)
	m.outIdx = make([]int32, len(nodes)*n)
	m.outs = []Set{{}}
	seen := map[Set]int32{}
	for old, nd := range nodes {
		i := int(number[old])
		for c, next := range nd.next {
			m.delta[i*n+c] = number[next] * int32(n)
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
	for i := 0; i < len(s); {
		if st <= m.depth2 {
			if i = m.skip(s, i, st); i >= len(s) {
				return
			}
			// Three bytes from the root at a start: the state leaves the
			// shallow ones unless the keyword is shorter.
			st = 0
			for end := min(i+3, len(s)); i < end; i++ {
				st = m.delta[st+int32(m.class[s[i]])]
				if st < 0 {
					st = ^st
					found.or(&m.outs[m.outIdx[st]])
				}
			}
			continue
		}
		st = m.delta[st+int32(m.class[s[i]])]
		i++
		if st < 0 {
			st = ^st
			found.or(&m.outs[m.outIdx[st]])
		}
	}
}

// skip returns where the scan resumes from the root: the first position,
// from i less the depth of state st (the bytes of a keyword it is into),
// whose three bytes may start a keyword, or len(s) when none does.
func (m *Matcher) skip(s string, i int, st int32) int {
	switch {
	case st > m.depth1:
		i -= 2
	case st > 0:
		i--
	}
	if i < 0 || i >= len(s) {
		return i
	}
	class, first, next, starts := &m.class, &m.first, &m.next, m.starts
	// Sliced so that the compiler drops the bounds checks of the loop.
	for t := s[i:]; len(t) >= 3; t = t[1:] {
		bit := (first[t[0]] | next[t[1]] | uint32(class[t[2]]&63)) & (startBits - 1)
		if starts[bit/64]&(1<<(bit%64)) != 0 {
			return len(s) - len(t)
		}
	}
	i = max(i, len(s)-2)
	return i // the last two bytes are stepped through
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
	for i := from; i < len(s); {
		if st <= m.depth2 {
			if i = m.skip(s, i, st); i >= len(s) {
				return -1
			}
			st = 0
			for end := min(i+3, len(s)); i < end; i++ {
				st = m.delta[st+int32(m.class[s[i]])]
				if st < 0 {
					return i + 1
				}
			}
			continue
		}
		st = m.delta[st+int32(m.class[s[i]])]
		i++
		if st < 0 {
			return i
		}
	}
	return -1
}

// Or adds the members of o to s.
func (s *Set) Or(o *Set) { s.or(o) }
