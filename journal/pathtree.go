package journal

import (
	"iter"
	"strings"
)

// PathTree maps object paths (§2) to values, one node per path component.
// Looking a path up, or visiting its ancestors, costs one map lookup per
// component, each hashing that component only: O(len(p)) whatever the
// depth. (A map keyed by whole paths costs O(depth × len(p)) to visit the
// ancestors of p, for each ancestor is hashed in full: quadratic in the
// length of a deep path.) The zero value is an empty tree.
type PathTree[V any] struct {
	root pathNode[V]
	n    int
}

type pathNode[V any] struct {
	kids map[string]*pathNode[V]
	val  V
	set  bool
}

// nextComponent returns the component of the absolute path p that starts
// at index i (just past a '/') and the index where it ends.
func nextComponent(p string, i int) (string, int) {
	end := strings.IndexByte(p[i:], '/')
	if end < 0 {
		return p[i:], len(p)
	}
	return p[i : i+end], i + end
}

// Set maps p, an object path, to v.
func (t *PathTree[V]) Set(p string, v V) {
	n := &t.root
	for i := 1; i <= len(p); {
		c, end := nextComponent(p, i)
		k := n.kids[c]
		if k == nil {
			if n.kids == nil {
				n.kids = make(map[string]*pathNode[V], 1)
			}
			k = &pathNode[V]{}
			n.kids[c] = k
		}
		n, i = k, end+1
	}
	if !n.set {
		t.n++
	}
	n.val, n.set = v, true
}

// Get returns the value of p, and whether p has one.
func (t *PathTree[V]) Get(p string) (v V, ok bool) {
	n := &t.root
	for i := 1; i <= len(p); {
		c, end := nextComponent(p, i)
		if n = n.kids[c]; n == nil {
			return v, false
		}
		i = end + 1
	}
	return n.val, n.set
}

// Len returns the number of paths that have a value.
func (t *PathTree[V]) Len() int { return t.n }

// Clear empties the tree.
func (t *PathTree[V]) Clear() { *t = PathTree[V]{} }

// Ancestors visits every proper ancestor of p that has a value, from the
// top down ("/a" before "/a/b"), with its path (a prefix of p, not a copy)
// and its value. "/" is no object path and never visited.
func (t *PathTree[V]) Ancestors(p string) iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		n := &t.root
		for i := 1; i <= len(p); {
			c, end := nextComponent(p, i)
			if end == len(p) {
				return // p itself
			}
			if n = n.kids[c]; n == nil {
				return
			}
			if n.set && !yield(p[:end], n.val) {
				return
			}
			i = end + 1
		}
	}
}
