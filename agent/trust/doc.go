// Package trust decides whether a git commit carries a signature by a key
// the agent trusts, with the verdict `git verify-commit` gives with the
// same keys (spec agent.md §4).
//
// # Use
//
//  1. [Load] the file given by --trust (or [Parse] its content). The kind
//     is told by content: a file holding an armored OpenPGP public key
//     block ("-----BEGIN PGP PUBLIC KEY BLOCK-----", as `gpg --export
//     --armor` writes it; several blocks may follow one another) is an
//     OpenPGP keyring, anything else an SSH allowed-signers file.
//     [Keys.Kind] says which.
//  2. [Keys.VerifyCommit] a go-git commit. A nil error means trusted, and
//     the [Signer] says by whom; otherwise the error is a *[Refusal] with
//     the commit, a [Reason] and a detail for people.
//
// # SSH allowed-signers files
//
// The format of git's gpg.ssh.allowedSignersFile, ssh-keygen(1) ALLOWED
// SIGNERS: one key a line,
//
//	principals [options] keytype base64-key [comment]
//
// with blank lines and '#' comments skipped. Principals are a
// comma-separated list of patterns ('*', '?', '!' to exclude), in double
// quotes if they hold spaces. The options are namespaces="list" (the
// signature namespaces the key may sign for; git signs and verifies with
// "git"), valid-after="time" and valid-before="time" (YYYYMMDD[HHMM[SS]],
// UTC with a trailing Z or UTC, local time otherwise) and cert-authority,
// names
// case-insensitive, as OpenSSH 9.2 reads them. The window is checked
// against the commit's committer time, which git passes to ssh-keygen as
// -Overify-time.
//
// A cert-authority line's key is a CA: it vouches for signatures made with
// a user certificate it signed that is valid at the committer time and
// whose principals match the line's patterns; it never matches a plain key,
// and a line with a plain key never matches a certificate of that key. A
// certificate whose CA signature does not verify makes a bad signature, as
// OpenSSH will not parse it.
//
// ssh-keygen skips lines it cannot use; cairn refuses the whole file with
// FILE:LINE, so that a typo does not quietly change who is trusted.
//
// # OpenPGP keyrings
//
// Every key in the keyring is trusted, whatever its owner trust: git
// accepts gpg's "good signature" even when the key's validity is unknown
// (its default gpg.minTrustLevel is "undefined"), so a key that gpg holds
// is a key git trusts, and no web of trust is consulted. Signatures by
// signing subkeys count for their primary key. As gpg does, expiry and
// revocation are judged at the time of verification: a key that has
// expired or been revoked since it signed no longer vouches for anything.
// A signature dated in the future is taken, as gpg takes it.
//
// # Verdicts and how they match git
//
// Which verifier runs depends, as in git, on the first line of the
// signature, not on the kind of the file; git's verdicts (exit status of
// git verify-commit and its %G? letter) map to reasons as follows.
//
//   - [Unsigned]: the commit has no gpgsig header (%G? N). A merge commit
//     with signed parents, a commit under a signed tag, and (in a SHA-1
//     repository) a commit with only a gpgsig-sha256 header are unsigned.
//   - [BadSignature]: the signature does not verify over the commit (it was
//     tampered with, %G? B), is garbage (git dies with "bad/incompatible
//     signature", or gpg finds no signature in it), is an OpenPGP message
//     rather than a detached signature, is an SSH signature for
//     another namespace than "git", holds more than one OpenPGP signature
//     (git refuses any such commit), carries a certificate whose CA
//     signature does not verify, or is by an SSH key for which
//     find-principals names principals but none verifies (its line does
//     not allow namespace "git", or a certificate's principal is excluded
//     with '!'): git's second ssh-keygen step fails, %G? B.
//   - [UnknownKey]: the signature is sound, but no trusted key vouches for
//     it: the key is not in the file (%G? E for gpg, U for ssh), its
//     allowed-signers line is outside its validity window at the committer
//     time, it is a certificate that no cert-authority line vouches for
//     (or not valid then, or for none of its principals), the OpenPGP key
//     has expired (%G? Y) or is revoked (%G? R), or the signature is SSH
//     and the file a keyring or the other way round (git then has no key
//     to check it with).
//
// For SSH, git 2.39 asks ssh-keygen for the principals of the first line,
// in file order, that lists the signature's key and whose window holds the
// committer time (`-Y find-principals`, which ignores namespaces=), then
// verifies with each of them (`-Y verify -n git -I PRINCIPAL`) until one
// succeeds: some line matching the principal must list the key (or, for a
// certificate, be its CA and the certificate list the principal), allow
// namespace git, and hold the time. This package does the same steps.
//
// Like git, the signed payload is the raw commit object without its gpgsig
// (and gpgsig-sha256) headers, so extra headers and mergetag headers are
// covered by the signature; and like gpg and ssh-keygen, only the first
// armored block of the signature is read.
//
// The corpus test builds its commits with real git, ssh-keygen and gpg and
// compares each verdict, and the signer git names, with git
// verify-commit's; with -record it writes them to testdata/commits, which
// a second test replays without the tools.
package trust
