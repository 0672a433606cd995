package gittest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Signer is a key made for one test that git commit -S signs with: an SSH
// key or an OpenPGP key.
type Signer struct {
	// Format is git's gpg.format for the key: "ssh" or "openpgp".
	Format string
	// Trust is what trusts the key in a --trust file: an allowed-signers
	// line, or the armored public key block.
	Trust string
	// KeyFile is the private key file of an SSH key ("" for OpenPGP).
	KeyFile string
	// config is the git configuration that makes git sign with the key.
	config [][2]string
}

// NewSSHSigner makes an ed25519 key with ssh-keygen; its Trust is an
// allowed-signers line for principal, for namespace git.
func NewSSHSigner(t testing.TB, principal string) *Signer {
	t.Helper()
	key := filepath.Join(t.TempDir(), "signing_key")
	pub := SSHKeygen(t, key)
	return &Signer{
		Format:  "ssh",
		Trust:   fmt.Sprintf("%s namespaces=\"git\" %s\n", principal, pub),
		KeyFile: key,
		config:  [][2]string{{"gpg.format", "ssh"}, {"user.signingkey", key}},
	}
}

// NewGPGSigner makes an ed25519 OpenPGP signing key for uid, without a
// passphrase, with gpg --batch in a GNUPGHOME of its own (whose agent is
// stopped when the test ends); its Trust is the armored public key.
func NewGPGSigner(t testing.TB, uid string) *Signer {
	t.Helper()
	NeedTool(t, "gpg")
	NeedTool(t, "gpgconf")
	home := t.TempDir()
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GNUPGHOME="+home)
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "all")
		cmd.Env = env
		_ = cmd.Run()
	})
	gpg := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		cmd.Env = env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out)
	}
	gpg("--quick-gen-key", uid, "ed25519", "sign", "never")
	var fpr string
	for _, line := range strings.Split(gpg("--with-colons", "--list-keys", uid), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && fpr == "" {
			fpr = f[9]
		}
	}
	if fpr == "" {
		t.Fatalf("gpg made no key for %s", uid)
	}
	// git runs gpg.program without our environment: a wrapper names the
	// key's home.
	wrapper := filepath.Join(home, "gpg-wrapper")
	script := fmt.Sprintf("#!/bin/sh\nGNUPGHOME='%s' exec gpg \"$@\"\n", home)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return &Signer{
		Format: "openpgp",
		Trust:  gpg("--armor", "--export", fpr),
		config: [][2]string{{"gpg.format", "openpgp"}, {"gpg.program", wrapper}, {"user.signingkey", fpr}},
	}
}

// SignWith sets the repository's configuration so that git commit -S
// (Commit(branch, files, "-S")) signs with s.
func (r *Repo) SignWith(s *Signer) {
	r.t.Helper()
	for _, kv := range s.config {
		r.Git("config", kv[0], kv[1])
	}
}

// GlobalConfig writes, in a temporary directory, a git configuration file
// that signs with s and names the user "test <test@example.org>": an
// operator's ~/.gitconfig, for GIT_CONFIG_GLOBAL. It returns its path.
func (s *Signer) GlobalConfig(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("[user]\n\tname = test\n\temail = test@example.org\n")
	for _, kv := range s.config {
		sect, key, _ := strings.Cut(kv[0], ".")
		fmt.Fprintf(&b, "[%s]\n\t%s = %s\n", sect, key, kv[1])
	}
	p := filepath.Join(t.TempDir(), "gitconfig")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TrustFile writes a --trust file that trusts the signers (all of one
// Format) in a temporary directory and returns its path.
func TrustFile(t testing.TB, signers ...*Signer) string {
	t.Helper()
	var b strings.Builder
	for _, s := range signers {
		if s.Format != signers[0].Format {
			t.Fatalf("TrustFile: a %s key with a %s key; a trust file holds one kind", s.Format, signers[0].Format)
		}
		b.WriteString(s.Trust)
	}
	p := filepath.Join(t.TempDir(), "trust")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
