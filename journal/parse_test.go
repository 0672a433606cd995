package journal

import (
	"strings"
	"testing"
)

const hexA = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

func TestParseCanonical(t *testing.T) {
	tests := []struct {
		name, in, want, identity, source string
	}{
		{"defaults dropped", "MKDIR /srv mode=0755 owner=root group=root", "MKDIR /srv", "path:/srv", ""},
		{"attrs sorted, mode padded", "MKDIR /srv owner=www mode=750", "MKDIR /srv mode=0750 owner=www", "path:/srv", ""},
		{"hash lower-cased", "COPY f /etc/f sha256=" + strings.ToUpper(hexA), "COPY f /etc/f sha256=" + hexA, "path:/etc/f", ""},
		{"quoted path", `MKDIR "/srv/my dir"`, `MKDIR "/srv/my dir"`, "path:/srv/my dir", ""},
		{"needless quotes dropped", `MKDIR "/srv"`, "MKDIR /srv", "path:/srv", ""},
		{"trailing comment is the source", "RM /etc/x # site.cairn:4:1 > web.cairn:9:3", "RM /etc/x", "path:/etc/x", "site.cairn:4:1 > web.cairn:9:3"},
		{"hash inside a word is no comment", "SYMLINK a#b /l", "SYMLINK a#b /l", "path:/l", ""},
		{"tabs and runs of spaces", "\tRM\t\t/x   ", "RM /x", "path:/x", ""},
		{"one tab between words", "SYMLINK .\t/d/b", "SYMLINK . /d/b", "path:/d/b", ""},
		{"durations canonical", "CHECK tcp 127.0.0.1:80 timeout=90s interval=1000ms", "CHECK tcp 127.0.0.1:80 timeout=1m30s", "", ""},
		{"exec timeout default dropped", "EXEC true timeout=10m undo=false", "EXEC true undo=false", "", ""},
		{"exec timeout canonical", "EXEC true timeout=90s", "EXEC true timeout=1m30s", "", ""},
		{"exec quoted with equals", `EXEC "a=b c" undo="rm -f /x"`, `EXEC "a=b c" undo="rm -f /x"`, "", ""},
		{"positional with escapes", `EXEC "printf '\\n'"`, `EXEC "printf '\\n'"`, "", ""},
		{"symlink target kept", "SYMLINK ../x/./y /a/b", "SYMLINK ../x/./y /a/b", "path:/a/b", ""},
		{"unicode bare", "MKDIR /srv/café", "MKDIR /srv/café", "path:/srv/café", ""},
		{"no-break space quoted", "MKDIR \"/srv/a\u00a0b\"", `MKDIR "/srv/a\u00a0b"`, "path:/srv/a\u00a0b", ""},
		{"systemd reload has no args", "SYSTEMD-RELOAD", "SYSTEMD-RELOAD", "", ""},
		{"user", "USERADD deploy uid=01001 groups=adm,www-data", "USERADD deploy groups=adm,www-data uid=1001", "user:deploy", ""},
		{"copy from blobs", "COPY - /etc/x sha256=" + hexA + " mode=0600", "COPY - /etc/x mode=0600 sha256=" + hexA, "path:/etc/x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := Parse("t.journal", []byte(tt.in+"\n"))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(j.Steps) != 1 {
				t.Fatalf("got %d steps, want 1", len(j.Steps))
			}
			s := j.Steps[0]
			if got := s.Canonical(); got != tt.want {
				t.Errorf("canonical:\n got %s\nwant %s", got, tt.want)
			}
			if got := s.Identity(); got != tt.identity {
				t.Errorf("identity = %q, want %q", got, tt.identity)
			}
			if s.Source != tt.source {
				t.Errorf("source = %q, want %q", s.Source, tt.source)
			}
			// The canonical form parses back to itself.
			again, err := ParseStep(Pos{File: "c", Line: 1}, tt.want)
			if err != nil || again.Canonical() != tt.want {
				t.Errorf("canonical form does not round-trip: %v, %q", err, again.Canonical())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"carriage return", "RM /x\r\n", "t.journal:1:6: carriage return"},
		{"unknown op with suggestion", "COPPY a /b sha256=" + hexA, `t.journal:1:1: unknown op COPPY (did you mean "COPY"?)`},
		{"lower-case op", "mkdir /x", `t.journal:1:1: invalid op "mkdir": an op is upper-case letters, digits and '-' (did you mean "MKDIR"?)`},
		{"missing required attribute", "COPY a /b", "t.journal:1:1: COPY: attribute sha256 is required"},
		{"missing argument", "COPY files/b sha256=" + hexA, "t.journal:1:14: COPY: missing argument PATH (COPY takes SRC PATH)"},
		{"extra argument", "RM /a /b", `t.journal:1:7: RM: unexpected argument "/b" (RM takes PATH)`},
		{"unknown attribute", "MKDIR /a mod=0755", `t.journal:1:10: MKDIR: unknown attribute "mod" (did you mean "mode"?)`},
		{"attribute twice", "MKDIR /a mode=0755 mode=0700", "t.journal:1:20: MKDIR: attribute mode given twice (first at column 10)"},
		{"positional after attribute", "MKDIR mode=0755 /a", "t.journal:1:17: MKDIR: positional argument \"/a\" after attributes"},
		{"relative path", "MKDIR etc", `t.journal:1:7: MKDIR: PATH: path "etc" is not absolute`},
		{"unclean path", "MKDIR /etc/../x", `t.journal:1:7: MKDIR: PATH: path "/etc/../x" is not clean`},
		{"trailing slash", "MKDIR /etc/", `t.journal:1:7: MKDIR: PATH: path "/etc/" is not clean`},
		{"double slash", "RM //etc", `t.journal:1:4: RM: PATH: path "//etc" is not clean`},
		{"root", "RM /", "t.journal:1:4: RM: PATH: path / cannot be managed"},
		{"path longer than PATH_MAX", "MKDIR " + strings.Repeat("/a", 2048), `t.journal:1:7: MKDIR: PATH: path "/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a"... is 4096 bytes long; a path has at most 4095 (PATH_MAX)`},
		{"64 KB path", "COPY f " + strings.Repeat("/a", 32<<10) + " sha256=" + hexA, `t.journal:1:8: COPY: PATH: path "/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a"... is 65536 bytes long`},
		{"component longer than NAME_MAX", "RM /etc/" + strings.Repeat("n", 256), `t.journal:1:4: RM: PATH: path "/etc/nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"...: component "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"... is 256 bytes long; a component has at most 255 (NAME_MAX)`},
		{"component of two-byte runes", "MKDIR /" + strings.Repeat("é", 128), `t.journal:1:7: MKDIR: PATH: path "/` + strings.Repeat("é", 31) + `"...: component "` + strings.Repeat("é", 32) + `"... is 256 bytes long`},
		{"long creates", "EXEC true creates=/" + strings.Repeat("c", 300), `t.journal:1:11: EXEC: creates: path "/ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"...: component`},
		{"source climbs", "COPY ../x /y sha256=" + hexA, `t.journal:1:6: COPY: SRC: path "../x" climbs out of its base`},
		{"absolute source", "INCLUDE /etc/x.journal", `t.journal:1:9: INCLUDE: PATH: path "/etc/x.journal" must be relative`},
		{"bad mode", "MKDIR /a mode=0999", `t.journal:1:10: MKDIR: mode: "0999" is not an octal mode`},
		{"mode too big", "MKDIR /a mode=17777", `t.journal:1:10: MKDIR: mode: "17777" is not an octal mode`},
		{"bad hash", "COPY a /b sha256=abc", `t.journal:1:11: COPY: sha256: "abc" is not a sha256`},
		{"bad duration", "CHECK tcp h:1 timeout=soon", `t.journal:1:15: CHECK: timeout: "soon" is not a positive duration`},
		{"zero duration", "CHECK tcp h:1 timeout=0s", `t.journal:1:15: CHECK: timeout: "0s" is not a positive duration`},
		{"exec zero timeout", "EXEC true timeout=0s", `t.journal:1:11: EXEC: timeout: "0s" is not a positive duration`},
		{"unknown check kind", "CHECK htp http://x", `t.journal:1:7: CHECK: KIND: unknown check kind "htp"`},
		{"bad tcp target", "CHECK tcp nohost", `t.journal:1:11: CHECK tcp: TARGET: "nohost" is not HOST:PORT`},
		{"bad url", "CHECK http ftp://x", `t.journal:1:12: CHECK http: TARGET: "ftp://x" is not an http:// or https:// URL`},
		{"unterminated quote", `EXEC "echo`, "t.journal:1:6: unterminated quoted string"},
		{"bad escape", `EXEC "\q"`, `t.journal:1:6: invalid quoted string "\q"`},
		{"quote glued to word", `EXEC "a"b`, "t.journal:1:9: expected white space after quoted string"},
		{"quote inside bare word", `SYMLINK a"b /x`, `t.journal:1:10: unexpected '"' inside a bare word`},
		{"bad attribute key", "MKDIR /a Mode=0755", `t.journal:1:10: invalid attribute key "Mode"`},
		{"positional with equals", "SYMLINK =x /a", `t.journal:1:9: invalid attribute key ""`},
		{"bad bool", "KUBECTL-APPLY k sha256=" + hexA + " kustomize=yes", `t.journal:1:89: KUBECTL-APPLY: kustomize: "yes" is not true or false`},
		{"invalid utf-8", "RM /a\xff", "t.journal:1:6: invalid UTF-8"},
		{"bad user name", "USERADD -x", `t.journal:1:9: USERADD: NAME: "-x" is not a valid name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.journal", []byte("# header\n"+strings.Replace(tt.in, "\n", "", 1)+"\n"))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want error %q", tt.in, tt.want)
			}
			// Line 1 of tt is line 2 of the file.
			want := strings.Replace(tt.want, "t.journal:1:", "t.journal:2:", 1)
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error:\n got %s\nwant prefix %s", err, want)
			}
		})
	}
}

func TestParseCollectsEveryError(t *testing.T) {
	_, err := Parse("t.journal", []byte("RM x\nMKDIR /ok\nRM /y extra\nBOGUS\n"))
	l := Findings(err)
	if len(l) != 3 {
		t.Fatalf("got %d findings, want 3: %v", len(l), err)
	}
	for i, line := range []int{1, 3, 4} {
		if l[i].Pos.Line != line {
			t.Errorf("finding %d at line %d, want %d", i, l[i].Pos.Line, line)
		}
	}
}

func TestParseBlankAndComments(t *testing.T) {
	j, err := Parse("t", []byte("\n   \n# comment\n  # indented comment\nRM /a\n\nRM /b"))
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Steps) != 2 || j.Steps[0].Pos.Line != 5 || j.Steps[1].Pos.Line != 7 {
		t.Fatalf("steps %+v", j.Steps)
	}
	if j.Steps[0].Pos.String() != "t:5:1" {
		t.Errorf("pos %s", j.Steps[0].Pos)
	}
}
