package journal

import "strings"

// Check runs the static checks of §4 over expanded steps: duplicate
// identities, a parent directory made by a later MKDIR, a path beneath or
// through a path that a COPY, SYMLINK or RM manages, and a file owned by a
// user or group that a later step creates. An EXEC without undo is a warning.
// The findings are sorted by position; none of severity SevError means the
// journal may be applied.
//
// The checks cost O(total bytes of the steps' paths): the paths are indexed
// by component in a PathTree, so that the ancestors of a path are visited in
// one walk down the tree, never by hashing each ancestor in full.
func Check(steps []Step) ErrorList {
	var errs ErrorList
	add := func(s *Step, sev Severity, msg string) {
		errs = append(errs, &Error{Pos: s.Pos, Msg: msg, Severity: sev})
	}
	identities := make(map[string]int, len(steps))
	var paths PathTree[int] // object path -> step index
	users := map[string]int{}
	groups := map[string]int{}
	for i := range steps {
		s := &steps[i]
		id := s.Identity()
		if id == "" {
			if s.Op == OpExec {
				if _, ok := s.Lookup("undo"); !ok {
					add(s, SevWarning, "EXEC without undo: its inverse does nothing")
				}
			}
			continue
		}
		if first, dup := identities[id]; dup {
			add(s, SevError, "duplicate identity "+id+": already managed by "+steps[first].Op+" at "+steps[first].Pos.String())
			continue
		}
		identities[id] = i
		switch s.Signature().Family {
		case FamilyPath:
			paths.Set(s.Object(), i)
		case FamilyUser:
			users[s.Object()] = i
		case FamilyGroup:
			groups[s.Object()] = i
		}
	}
	for i := range steps {
		s := &steps[i]
		if s.Signature().Family != FamilyPath {
			continue
		}
		p := s.Object()
		parentLen := strings.LastIndexByte(p, '/')
		later, below := -1, -1 // a later MKDIR of the parent; the deepest non-directory ancestor
		var belowPath string
		for a, j := range paths.Ancestors(p) {
			if len(a) == parentLen && j > i && steps[j].Op == OpMkdir {
				later = j
			}
			if steps[j].Op != OpMkdir {
				below, belowPath = j, a
			}
		}
		if later >= 0 {
			add(s, SevError, "parent directory "+p[:parentLen]+" is made by MKDIR at "+steps[later].Pos.String()+", which comes later")
		}
		if below >= 0 {
			add(s, SevError, p+" lies beneath "+belowPath+", which "+steps[below].Op+" at "+steps[below].Pos.String()+" manages as no directory")
		}
		if owner, ok := s.Lookup("owner"); ok {
			if j, ok := users[owner]; ok && j > i {
				add(s, SevError, "owner "+owner+" is created by USERADD at "+steps[j].Pos.String()+", which comes later")
			}
		}
		if group, ok := s.Lookup("group"); ok {
			if j, ok := groups[group]; ok && j > i {
				add(s, SevError, "group "+group+" is created by GROUPADD at "+steps[j].Pos.String()+", which comes later")
			}
		}
	}
	errs.Sort()
	return errs
}
