package trust

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Reason says why a commit was refused. Its values are the reasons the
// agent's contract (spec §4) names.
type Reason string

// The reasons a commit is refused.
const (
	// Unsigned: the commit has no gpgsig header.
	Unsigned Reason = "unsigned"
	// BadSignature: the signature is malformed, does not match the commit,
	// is not for the "git" namespace, or is by a listed key that the trust
	// file does not allow for git (see the package doc).
	BadSignature Reason = "bad-signature"
	// UnknownKey: the signature is sound but made by a key the trust file
	// does not vouch for, or no longer vouches for (an expired or revoked
	// OpenPGP key, an SSH key outside its valid-after/valid-before window,
	// an SSH certificate no cert-authority line vouches for).
	UnknownKey Reason = "unknown-key"
)

// Refusal is the error [Keys.VerifyCommit] returns for a commit that is not
// trusted.
type Refusal struct {
	// Commit is the full hash of the refused commit.
	Commit string
	// Reason is why.
	Reason Reason
	// Detail says more, for people: which key, which line.
	Detail string
}

// Error returns "commit HASH: REASON: DETAIL".
func (r *Refusal) Error() string {
	return fmt.Sprintf("commit %s: %s: %s", r.Commit, r.Reason, r.Detail)
}

// Signer says who signed a trusted commit, for logs.
type Signer struct {
	// Principal is, for SSH, the principal that git would report (the one of
	// the allowed-signers line that verified); for OpenPGP, the primary user
	// ID of the key.
	Principal string
	// Fingerprint is the signing key's fingerprint: "SHA256:..." for SSH,
	// the 40 hex digits of the (sub)key that signed for OpenPGP.
	Fingerprint string
}

// Kinds of trust file, as [Keys.Kind] returns them.
const (
	KindSSH     = "ssh"
	KindOpenPGP = "openpgp"
)

// Keys is a parsed trust file: the keys allowed to sign applied commits. It
// is immutable and safe for use from many goroutines.
type Keys struct {
	name    string
	signers []allowedSigner // KindSSH
	ring    *keyring        // KindOpenPGP
}

// Load reads and parses the trust file at path (the agent's --trust FILE).
func Load(path string) (*Keys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trust file: %w", err)
	}
	return Parse(path, data)
}

// pgpKeyBlock starts an armored OpenPGP public keyring.
const pgpKeyBlock = "-----BEGIN PGP PUBLIC KEY BLOCK-----"

// Parse parses a trust file's content; name is used in errors (FILE:LINE).
// A file that holds an armored OpenPGP public key block is an OpenPGP
// keyring; anything else is read as an SSH allowed-signers file. A file
// without any key is an error, and so is any line of an allowed-signers
// file that ssh-keygen could not use.
func Parse(name string, data []byte) (*Keys, error) {
	k := &Keys{name: name}
	if bytes.Contains(data, []byte(pgpKeyBlock)) {
		ring, err := parseKeyring(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		k.ring = ring
		return k, nil
	}
	signers, err := parseAllowedSigners(name, data)
	if err != nil {
		return nil, err
	}
	if len(signers) == 0 {
		return nil, fmt.Errorf("%s: no keys: neither an SSH allowed-signers file nor an armored OpenPGP public keyring", name)
	}
	k.signers = signers
	return k, nil
}

// Kind returns "ssh" for an allowed-signers file, "openpgp" for a keyring.
func (k *Keys) Kind() string {
	if k.ring != nil {
		return KindOpenPGP
	}
	return KindSSH
}

// Name returns the name the keys were loaded from.
func (k *Keys) Name() string { return k.name }

// The armor lines git recognises at the start of a signature, to choose
// the program that verifies it (gpg-interface.c, get_format_by_sig).
const (
	sshSigBegin = "-----BEGIN SSH SIGNATURE-----"
	pgpSigBegin = "-----BEGIN PGP SIGNATURE-----"
	pgpMsgBegin = "-----BEGIN PGP MESSAGE-----"
	x509Begin   = "-----BEGIN SIGNED MESSAGE-----"
)

// VerifyCommit checks that c carries a signature by one of the keys, with
// the verdict `git verify-commit` gives with the same keys. It returns who
// signed and a nil error for a trusted commit, and a *[Refusal] otherwise.
//
// The signature is the commit's gpgsig header (go-git's PGPSignature, which
// holds SSH signatures too); the signed payload is the raw commit object
// without its signature headers ([object.Commit.EncodeWithoutSignature]).
// Which verifier runs depends, as in git, on the signature's first line,
// not on the kind of the keys: an SSH signature checked against an OpenPGP
// keyring, or the other way round, is by an unknown key.
func (k *Keys) VerifyCommit(c *object.Commit) (Signer, error) {
	refuse := func(r Reason, format string, a ...any) (Signer, error) {
		return Signer{}, &Refusal{Commit: c.Hash.String(), Reason: r, Detail: fmt.Sprintf(format, a...)}
	}
	sig := c.PGPSignature
	if sig == "" {
		return refuse(Unsigned, "no signature")
	}
	payload := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(payload); err != nil {
		return refuse(BadSignature, "encoding the signed payload: %v", err)
	}
	data, err := readAll(payload)
	if err != nil {
		return refuse(BadSignature, "reading the signed payload: %v", err)
	}
	var (
		s   Signer
		r   Reason
		msg string
	)
	switch {
	case strings.HasPrefix(sig, sshSigBegin):
		s, r, msg = k.verifySSH(data, sig, verifyTime(c))
	case strings.HasPrefix(sig, pgpSigBegin):
		s, r, msg = k.verifyOpenPGP(data, sig)
	case strings.HasPrefix(sig, pgpMsgBegin), strings.HasPrefix(sig, x509Begin):
		r, msg = BadSignature, "not a detached OpenPGP or SSH signature"
	default:
		r, msg = BadSignature, "unrecognised signature format"
	}
	if r != "" {
		return refuse(r, "%s", msg)
	}
	return s, nil
}

// verifyTime is the time git hands ssh-keygen with -Overify-time: the
// committer time, or now when the commit has none.
func verifyTime(c *object.Commit) time.Time {
	if c.Committer.When.Unix() <= 0 {
		return time.Now()
	}
	return c.Committer.When
}

func readAll(o *plumbing.MemoryObject) ([]byte, error) {
	r, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
