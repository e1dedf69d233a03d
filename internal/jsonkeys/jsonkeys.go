// Package jsonkeys finds a key that appears twice in one JSON object, in
// time linear in the size of the document. encoding/json and most decoders
// keep the last of two equal keys silently, so a body with a repeated key
// means different things to different readers; the receiver refuses it.
//
// Each object's keys are checked with a small scan while the object is
// small and with a hash set once it is not, so an object of n keys costs
// O(n), not the O(n²) of comparing every key with every earlier one.
package jsonkeys

import (
	"strings"
	"unsafe"

	"github.com/valyala/fastjson"
)

// smallObject is the key count up to which comparing every pair is cheaper
// than hashing (at most smallObject²/2 compares of short keys).
const smallObject = 32

// Duplicate returns the dotted path of a key that appears twice in one
// object of v ("a.b" for key b twice in the object under key a), or ""
// when there is none. Keys are compared after unescaping, so "a" and
// "\u0061" are the same key. Objects are checked before their children:
// the path returned is the shallowest repeated key. An empty key is
// written `""` in the path, so a repeated empty key is reported too.
func Duplicate(v *fastjson.Value) string {
	found, path, ok := duplicate(v)
	if !ok {
		return ""
	}
	// path holds the keys innermost first.
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return strings.Join(append(path, pathSegment(found)), ".")
}

// pathSegment is how a key stands in a reported path.
func pathSegment(k string) string {
	if k == "" {
		return `""`
	}
	return k
}

// duplicate returns a repeated key and the keys leading to the object that
// holds it, innermost first. The path is built only on the way back from a
// find: a clean document, the usual case, costs no allocation for it.
func duplicate(v *fastjson.Value) (string, []string, bool) {
	switch v.Type() {
	case fastjson.TypeObject:
		obj, _ := v.Object()
		if k, ok := repeatedKey(obj); ok {
			return k, nil, true
		}
		var (
			found string
			path  []string
			ok    bool
		)
		obj.Visit(func(k []byte, child *fastjson.Value) {
			if ok || !container(child) {
				return
			}
			if found, path, ok = duplicate(child); ok {
				path = append(path, pathSegment(string(k)))
			}
		})
		return found, path, ok
	case fastjson.TypeArray:
		arr, _ := v.Array()
		for _, e := range arr {
			if found, path, ok := duplicate(e); ok {
				return found, path, true
			}
		}
	}
	return "", nil, false
}

func container(v *fastjson.Value) bool {
	t := v.Type()
	return t == fastjson.TypeObject || t == fastjson.TypeArray
}

// repeatedKey returns the first key of obj that an earlier key equals; ok
// tells a repeated empty key from none.
func repeatedKey(obj *fastjson.Object) (found string, ok bool) {
	n := obj.Len()
	if n <= smallObject {
		var keys [smallObject][]byte // on the stack: no allocation per object
		seen := 0
		obj.Visit(func(k []byte, _ *fastjson.Value) {
			if ok {
				return
			}
			for _, prev := range keys[:seen] {
				if string(prev) == string(k) {
					found, ok = string(k), true
					return
				}
			}
			keys[seen] = k
			seen++
		})
		return found, ok
	}
	// The set holds the keys without copying them: fastjson's keys live
	// as long as the parsed value, and the set does not outlive this call.
	seen := make(map[string]struct{}, n)
	obj.Visit(func(k []byte, _ *fastjson.Value) {
		if ok {
			return
		}
		if _, dup := seen[string(k)]; dup {
			found, ok = string(k), true
			return
		}
		seen[unsafe.String(unsafe.SliceData(k), len(k))] = struct{}{}
	})
	return found, ok
}
