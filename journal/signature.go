package journal

import (
	"sort"
)

// ValueKind says how an argument or attribute value is checked and how its
// canonical form is written.
type ValueKind uint8

// The value kinds of the step table.
const (
	Word       ValueKind = iota // any word, stored as written
	ObjectPath                  // absolute and clean, never "/" (§2)
	SourcePath                  // clean relative path that cannot climb out of its base
	CopySource                  // a SourcePath or "-" (content from the blob directory)
	LinkTarget                  // any non-empty word, stored exactly as written
	Mode                        // octal permission bits, canonical as four digits
	Hash                        // sha256 as 64 hex digits, canonical in lower case
	Duration                    // a positive Go duration, canonical as time.Duration prints it
	Bool                        // true or false
	Name                        // a user or group name, or a numeric id (digits only: 0 to MaxID)
	ID                          // a numeric user or group id, 0 to MaxID
	NameList                    // names separated by commas
	CheckKind                   // one of the CHECK kinds
	Command                     // a non-empty shell command
)

// ArgSpec describes one positional argument of a step.
type ArgSpec struct {
	Name string
	Kind ValueKind
}

// AttrSpec describes one attribute of a step.
type AttrSpec struct {
	Key      string
	Kind     ValueKind
	Default  string // canonical default; an attribute equal to it is left out of the canonical form
	Required bool
}

// Signature is one row of the table of step kinds: what a line of that kind
// holds and what object it manages.
type Signature struct {
	Op    string
	Args  []ArgSpec
	Attrs []AttrSpec // sorted by key
	// Family is the identity family ("path", "user", ...), or "" for steps
	// that manage no object and may repeat.
	Family string
	// IdentityArg is the index of the positional argument that names the
	// managed object when Family is set.
	IdentityArg int
	// UndoIsNoop reports whether the inverse op of s does nothing, so that a
	// plan can say so. Nil means the inverse always acts.
	UndoIsNoop func(s *Step) bool
	// Summary is one line for help texts.
	Summary string
}

// Attr returns the spec of attribute key, or nil.
func (sig *Signature) Attr(key string) *AttrSpec {
	for i := range sig.Attrs {
		if sig.Attrs[i].Key == key {
			return &sig.Attrs[i]
		}
	}
	return nil
}

// Identity families (§2).
const (
	FamilyPath        = "path"
	FamilyUser        = "user"
	FamilyGroup       = "group"
	FamilyPackage     = "package"
	FamilyUnitEnabled = "unit-enabled"
	FamilyUnitStarted = "unit-started"
	FamilyKube        = "kube"
	FamilyPlaybook    = "playbook"
)

// The ops of journal format v1.
const (
	OpMkdir          = "MKDIR"
	OpCopy           = "COPY"
	OpSymlink        = "SYMLINK"
	OpRm             = "RM"
	OpUseradd        = "USERADD"
	OpGroupadd       = "GROUPADD"
	OpAptInstall     = "APT-INSTALL"
	OpSystemdEnable  = "SYSTEMD-ENABLE"
	OpSystemdStart   = "SYSTEMD-START"
	OpSystemdRestart = "SYSTEMD-RESTART"
	OpSystemdReload  = "SYSTEMD-RELOAD"
	OpKubectlApply   = "KUBECTL-APPLY"
	OpPlaybook       = "PLAYBOOK"
	OpExec           = "EXEC"
	OpCheck          = "CHECK"
	OpInclude        = "INCLUDE"
)

// DefaultExecTimeout is the timeout of an EXEC without one: long enough for
// a database migration or a certificate request, short enough that a hung
// command does not hold a move (and the state lock) for good. The timeout
// bounds the command and, separately, its undo.
const DefaultExecTimeout = "10m0s"

// The CHECK kinds of v1 (§3).
var CheckKinds = []string{"command", "file", "http", "tcp", "unit-active"}

var ownership = []AttrSpec{
	{Key: "group", Kind: Name, Default: "root"},
	{Key: "owner", Kind: Name, Default: "root"},
}

func withOwnership(mode string, extra ...AttrSpec) []AttrSpec {
	attrs := append([]AttrSpec{{Key: "mode", Kind: Mode, Default: mode}}, ownership...)
	attrs = append(attrs, extra...)
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].Key < attrs[j].Key })
	return attrs
}

// signatures is the table of step kinds, sorted by op.
var signatures = []Signature{
	{Op: OpAptInstall, Args: []ArgSpec{{"PKG", Name}}, Family: FamilyPackage,
		Attrs:   []AttrSpec{{Key: "version", Kind: Word}},
		Summary: "install a Debian package"},
	{Op: OpCheck, Args: []ArgSpec{{"KIND", CheckKind}, {"TARGET", Word}},
		Attrs:      []AttrSpec{{Key: "interval", Kind: Duration, Default: "1s"}, {Key: "timeout", Kind: Duration, Default: "30s"}},
		UndoIsNoop: func(*Step) bool { return true },
		Summary:    "poll until a health check holds"},
	{Op: OpCopy, Args: []ArgSpec{{"SRC", CopySource}, {"PATH", ObjectPath}}, Family: FamilyPath, IdentityArg: 1,
		Attrs:   withOwnership("0644", AttrSpec{Key: "sha256", Kind: Hash, Required: true}),
		Summary: "write a file's content, mode and owner"},
	{Op: OpExec, Args: []ArgSpec{{"COMMAND", Command}},
		Attrs:      []AttrSpec{{Key: "creates", Kind: ObjectPath}, {Key: "timeout", Kind: Duration, Default: DefaultExecTimeout}, {Key: "undo", Kind: Command}},
		UndoIsNoop: func(s *Step) bool { _, ok := s.Lookup("undo"); return !ok },
		Summary:    "run a command with /bin/sh -c"},
	{Op: OpGroupadd, Args: []ArgSpec{{"NAME", Name}}, Family: FamilyGroup,
		Attrs:   []AttrSpec{{Key: "gid", Kind: ID}, {Key: "system", Kind: Bool, Default: "false"}},
		Summary: "create a group or set its gid"},
	{Op: OpInclude, Args: []ArgSpec{{"PATH", SourcePath}},
		Summary: "splice in the steps of another journal file"},
	{Op: OpKubectlApply, Args: []ArgSpec{{"PATH", SourcePath}}, Family: FamilyKube,
		Attrs:   []AttrSpec{{Key: "kustomize", Kind: Bool, Default: "false"}, {Key: "sha256", Kind: Hash, Required: true}},
		Summary: "kubectl apply a manifest directory"},
	{Op: OpMkdir, Args: []ArgSpec{{"PATH", ObjectPath}}, Family: FamilyPath,
		Attrs:   withOwnership("0755"),
		Summary: "make a directory with a mode and owner"},
	{Op: OpPlaybook, Args: []ArgSpec{{"PATH", SourcePath}}, Family: FamilyPlaybook,
		Attrs:   []AttrSpec{{Key: "sha256", Kind: Hash, Required: true}},
		Summary: "run an Ansible playbook on this host"},
	{Op: OpRm, Args: []ArgSpec{{"PATH", ObjectPath}}, Family: FamilyPath,
		Summary: "make a path absent"},
	{Op: OpSymlink, Args: []ArgSpec{{"TARGET", LinkTarget}, {"PATH", ObjectPath}}, Family: FamilyPath, IdentityArg: 1,
		Summary: "make a symbolic link"},
	{Op: OpSystemdEnable, Args: []ArgSpec{{"UNIT", Word}}, Family: FamilyUnitEnabled,
		Summary: "enable a systemd unit"},
	{Op: OpSystemdReload, Attrs: []AttrSpec{{Key: "on", Kind: Hash}},
		Summary: "systemctl daemon-reload"},
	{Op: OpSystemdRestart, Args: []ArgSpec{{"UNIT", Word}},
		Attrs:   []AttrSpec{{Key: "on", Kind: Hash}},
		Summary: "restart a systemd unit"},
	{Op: OpSystemdStart, Args: []ArgSpec{{"UNIT", Word}}, Family: FamilyUnitStarted,
		Summary: "start a systemd unit"},
	{Op: OpUseradd, Args: []ArgSpec{{"NAME", Name}}, Family: FamilyUser,
		Attrs: []AttrSpec{
			{Key: "gid", Kind: ID}, {Key: "groups", Kind: NameList}, {Key: "home", Kind: ObjectPath},
			{Key: "shell", Kind: ObjectPath}, {Key: "system", Kind: Bool, Default: "false"}, {Key: "uid", Kind: ID},
		},
		Summary: "create a user or bring its attributes to these"},
}

// Lookup returns the signature of op, or nil if op is unknown.
func Lookup(op string) *Signature {
	i := sort.Search(len(signatures), func(i int) bool { return signatures[i].Op >= op })
	if i < len(signatures) && signatures[i].Op == op {
		return &signatures[i]
	}
	return nil
}

// Signatures returns the table of step kinds, sorted by op. The caller must
// not modify it.
func Signatures() []Signature { return signatures }
