package trust

import (
	"strings"
	"testing"
	"time"
)

const (
	edKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxvgznGXrD0ml3tuCzfZfqALLKXPw5Nhd3d9HrfZsb4"
	ecdsa2 = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBF1lDoMQoqDmsPooYZwP2/4YxmSNHsAN+6GXTNTJJYXecrxAmDG5OQdR6H4SJZkN8guFKM2WHv/BY7wPO8xmbcQ="
)

func TestParseAllowedSigners(t *testing.T) {
	file := strings.Join([]string{
		"# comment",
		"   # indented comment",
		"",
		" \t",
		"a@example.org " + edKey + " a comment",
		`"b c,d@example.org" NAMESPACES="git,file",Valid-After="20200101Z",valid-before="203001011200Z" ` + ecdsa2,
		"e@example.org\t" + edKey + "\r",
	}, "\n")
	k, err := Parse("signers", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if k.Kind() != KindSSH || len(k.signers) != 3 {
		t.Fatalf("Kind %s, %d signers, want ssh and 3", k.Kind(), len(k.signers))
	}
	s := k.signers[1]
	after := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	before := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC).Unix()
	if s.line != 6 || s.principals != "b c,d@example.org" || s.namespaces != "git,file" || s.validAfter != after || s.validBefore != before {
		t.Errorf("line 6 parsed as %+v", s)
	}
	if !s.validAt(after) || !s.validAt(before) || s.validAt(after-1) || s.validAt(before+1) {
		t.Errorf("validity window of %+v is not [valid-after, valid-before]", s)
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	for _, tt := range []struct{ line, want string }{
		{"a@example.org", "missing key"},
		{"a@example.org ssh-ed25519", "missing key"},
		{`"a@example.org ` + edKey, "unterminated quote"},
		{"a@example.org namespaces=git " + edKey, "missing start quote"},
		{`a@example.org namespaces="git ` + edKey, "unterminated quote"},
		{`a@example.org foo="x" ` + edKey, "unknown key option"},
		{`a@example.org cert-authority="x" ` + edKey, "unknown key option"},
		{`a@example.org namespaces="a",namespaces="b" ` + edKey, "multiple"},
		{`a@example.org valid-before="2020" ` + edKey, "invalid"},
		{`a@example.org valid-after="20300101",valid-before="20200101" ` + edKey, "before"},
		{`a@example.org namespaces="git", ` + edKey, "end-of-options"},
		{`a@example.org namespaces="git"x ` + edKey, "unknown key option"},
		{"a@example.org ssh-ed25519 AAAAnotbase64!", "invalid key"},
		{"a@example.org ssh-rsa " + strings.Fields(edKey)[1], "invalid key"},
	} {
		_, err := Parse("trust.txt", []byte("# ok\n\n"+tt.line+"\n"))
		if err == nil || !strings.HasPrefix(err.Error(), "trust.txt:3: ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want trust.txt:3: ...%s...", tt.line, err, tt.want)
		}
	}
}

func TestParseRefusesFilesWithoutKeys(t *testing.T) {
	for _, data := range []string{"", "# nothing\n\n", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----\n"} {
		if k, err := Parse("f", []byte(data)); err == nil {
			t.Errorf("Parse(%q) = %v kind %s, want an error", data, k, k.Kind())
		}
	}
}

func TestMatchPatternList(t *testing.T) {
	for _, tt := range []struct {
		s, list string
		want    bool
	}{
		{"a@x", "a@x", true},
		{"a@x", "b@x,a@x", true},
		{"a@x", "*@x", true},
		{"a@x", "?@x", true},
		{"ab@x", "?@x", false},
		{"a@x", "*@x,!a@x", false},
		{"b@x", "*@x,!a@x", true},
		{"a@x", "!b@x", false},
		{"A@x", "a@x", false},
		{"git", "git,file", true},
		{"git", "gi*", true},
		{"git", "", false},
		{"*@x", "*@x,!a@x", true},
		{"aXbXc", "a*b*c", true},
		{"aXbX", "a*b*c", false},
	} {
		if got := matchPatternList(tt.s, tt.list); got != tt.want {
			t.Errorf("matchPatternList(%q, %q) = %v, want %v", tt.s, tt.list, got, tt.want)
		}
	}
}
