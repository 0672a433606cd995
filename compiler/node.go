package compiler

import (
	"strconv"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"

	"github.com/cairn-cm/cairn/journal"
)

// node is one block's part of the journal: its steps, and what orders it
// among the others.
type node struct {
	idx   int    // source order
	addr  string // TYPE.LABEL
	pos   lexer.Position
	chain string
	scope *scope
	unit  *unit
	steps []journal.Step

	// What it provides to others.
	dir                        string // a dir block's path
	file                       string // a file block's path (restart_on)
	user, group, pkg, unitName string
	// gidName is a user's gid given as the name of a group block.
	gidName string
	// pkgExplicit says a service named its package, which must then exist.
	pkgExplicit bool

	// What it needs, resolved into deps by resolve.
	paths   []string // object paths whose nearest managed parent dir comes first
	owners  []string // user names
	groups  []string // group names
	pkgs    []string
	units   []string
	restart *restartNeed
	after   []afterRef
	deps    []*node
	depSet  map[*node]struct{} // deps as a set, once there are many

	// hashes to fill in once every source file is hashed.
	fills []fill
}

// what names the node in messages, TYPE "LABEL", made from its address
// when a message needs it rather than for each of its thousands.
func (n *node) what() string {
	typ, label, _ := strings.Cut(n.addr, ".")
	return typ + " " + strconv.Quote(label)
}

// afterRef is one entry of an after list.
type afterRef struct {
	addr  string
	unit  *unit
	scope *scope
	pos   lexer.Position
}

// fill is a sha256 attribute of a step still to compute: the hash of a file
// (or, for dir, of a directory's files) of the repository.
type fill struct {
	step int
	path string
	dir  bool
	key  string // the attribute to set; "" means sha256
	// unitPath, when set, makes the value reloadHash(unitPath, sha256).
	unitPath string
	// pos is where the block names the file, to report it unreadable as
	// noun: "source file", "playbook", "directory".
	pos  lexer.Position
	noun string
}

// restartNeed is a service's restart_on: the files whose content the
// restart step's on= hash covers.
type restartNeed struct {
	unit  string
	files []string
	pos   lexer.Position
}
