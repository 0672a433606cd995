package trust

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestParseAgreesWithSSHKeygen gives allowed-signers lines to cairn and to
// ssh-keygen -Y find-principals (the first step of git's verification):
// a line cairn accepts must give the principals ssh-keygen prints, and a
// line ssh-keygen cannot use must be refused. Every validity window here
// holds the present, so only the syntax decides.
func TestParseAgreesWithSSHKeygen(t *testing.T) {
	needTools(t, "ssh-keygen")
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	run := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command("ssh-keygen", args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("", "-q", "-t", "ed25519", "-N", "", "-f", key); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	if out, err := run("message", "-q", "-Y", "sign", "-f", key, "-n", "git"); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
	} else if err := os.WriteFile(filepath.Join(dir, "sig"), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	pubText, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubText)
	if err != nil {
		t.Fatal(err)
	}
	k := strings.TrimSpace(string(pubText))

	for _, line := range []string{
		"a@x K",
		"\r\t a@x K",
		"a@x \t K comment with  spaces",
		"a@x,b@x,*@y,!c@y K",
		`"a b" K`,
		`"a b",c K`,
		`a"b c"d K`,
		`a"b c" K`,
		`"a@x K`,
		"a@x",
		"a@x K trailing",
		`a@x namespaces="git" K`,
		`a@x NAMESPACES="git,file" K`,
		`a@x namespaces="g\"it" K`,
		`a@x namespaces="a b" K`,
		"a@x namespaces=git K",
		`a@x namespaces="git K`,
		`a@x namespaces="git", K`,
		`a@x namespaces="git",,valid-after="20200101" K`,
		`a@x namespaces="git" ,valid-after="20200101" K`,
		`a@x namespaces="git"x K`,
		`a@x namespaces="a",namespaces="b" K`,
		`a@x foo K`,
		`a@x ,namespaces="git" K`,
		`a@x namespaces="git",,foo K`,
		`a@x namespaces="" K`,
		`a@x cert-authority,cert-authority K`,
		`a@x cert-authorityX K`,
		`a@x Cert-Authority,namespaces="git" K`,
		`a@x valid-afterx="20200101" K`,
		`a@x valid-after ="20200101" K`,
		`a@x foo="bar" K`,
		`a@x cert-authority="x" K`,
		`a@x valid-after="20200101" K`,
		`a@x valid-after="20200101Z" K`,
		`a@x valid-after="20200101z" K`,
		`a@x valid-after="20200101UTC" K`,
		`a@x valid-after="20200101utc" K`,
		`a@x valid-after="202001011230" K`,
		`a@x valid-after="20200101123059Z" K`,
		`a@x valid-after="20200101123060Z" K`,
		`a@x valid-after="20200101123062Z" K`,
		`a@x valid-after="2020010112" K`,
		`a@x valid-after="2020" K`,
		`a@x valid-after="" K`,
		`a@x valid-after="20201301" K`,
		`a@x valid-after="20200230" K`,
		`a@x valid-after="20200132" K`,
		`a@x valid-after="20200100" K`,
		`a@x valid-after="202001012400" K`,
		`a@x valid-after="2020-1-01" K`,
		`a@x valid-after="00000101" K`,
		`a@x valid-after="19700101Z" K`,
		`a@x valid-after="19700102Z" K`,
		`a@x valid-before="20990101" K`,
		`a@x valid-after="20200101",valid-before="20990101" K`,
		`a@x valid-after="20200101",valid-before="20200101" K`,
		`a@x valid-before="20990101",valid-after="20990102" K`,
		`a@x Valid-Before="20990101Z",Namespaces="git" K`,
		"a@x ssh-ed25519 AAAA",
		"a@x ssh-ed25519",
	} {
		line = strings.ReplaceAll(line, "K", k)
		file := filepath.Join(dir, "allowed")
		if err := os.WriteFile(file, []byte(line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := run("", "-Y", "find-principals", "-f", file, "-s", filepath.Join(dir, "sig"))
		var want []string
		if err == nil {
			want = strings.Split(strings.TrimSpace(out), "\n")
		}
		var got []string
		keys, perr := Parse(file, []byte(line+"\n"))
		if perr == nil {
			if ps, ok := keys.signers[0].findPrincipals(signingKey{blob: pub.Marshal(), when: time.Now().Unix()}); ok {
				got = ps
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("line %q: cairn %q (%v), ssh-keygen %q:\n%s", line, got, perr, want, out)
		}
	}
}
