package trust

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// allowedSigner is one line of an allowed-signers file.
type allowedSigner struct {
	line          int
	principals    string // comma-separated patterns, as written (unquoted)
	namespaces    string // comma-separated patterns, when hasNamespaces
	hasNamespaces bool   // namespaces= given (even empty: then none)
	validAfter    int64  // Unix seconds; 0 when unset
	validBefore   int64  // Unix seconds; 0 when unset
	ca            bool   // cert-authority: key is a CA for user certificates
	key           ssh.PublicKey
	blob          []byte // key.Marshal()
}

// parseAllowedSigners reads an allowed-signers file as ssh-keygen(1)
// describes it (ALLOWED SIGNERS) and as OpenSSH 9.2's sshsig.c parses it:
//
//	principals [options] keytype base64-key [comment]
//
// Blank lines and lines whose first non-blank character is '#' are skipped.
// Where ssh-keygen reports a bad line and goes on, this refuses the file:
// a trust file with a typo should stop the agent, not quietly trust less.
func parseAllowedSigners(name string, data []byte) ([]allowedSigner, error) {
	var out []allowedSigner
	for i, raw := range strings.Split(string(data), "\n") {
		// OpenSSH 9.2 skips blanks and tabs only; a line of nothing but
		// white space is an error there that ends up skipped, so it is
		// skipped here.
		line := strings.TrimLeft(raw, " \t")
		if strings.TrimLeft(line, whitespace) == "" || line[0] == '#' {
			continue
		}
		s, err := parseSignerLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, i+1, err)
		}
		s.line = i + 1
		out = append(out, s)
	}
	return out, nil
}

const whitespace = " \t\r\n"

// parseSignerLine parses one non-blank, non-comment line.
func parseSignerLine(line string) (allowedSigner, error) {
	var s allowedSigner
	principals, rest, ok := nextWord(line)
	if !ok {
		return s, errors.New("invalid line: unterminated quote in principals")
	}
	if rest == "" {
		return s, errors.New("missing key")
	}
	if principals == "" {
		return s, errors.New("empty principals")
	}
	s.principals = principals
	key, err := parseKey(rest)
	if err != nil {
		// Not a key: options first, then the key.
		opts, after, err := splitOptions(rest)
		if err != nil {
			return s, err
		}
		if after == "" {
			return s, errors.New("missing key")
		}
		if key, err = parseKey(after); err != nil {
			return s, fmt.Errorf("invalid key: %w", err)
		}
		if err := s.setOptions(opts); err != nil {
			return s, fmt.Errorf("bad options: %w", err)
		}
	}
	s.key, s.blob = key, key.Marshal()
	return s, nil
}

// nextWord splits off the first word of s the way OpenSSH's strdelimw
// does: it ends at white space; a double quote starts a quoted part that
// runs to the next double quote, and the quotes are dropped. It returns
// the word and the rest after the white space following it; ok is false
// for an unterminated quote.
func nextWord(s string) (word, rest string, ok bool) {
	i := strings.IndexAny(s, whitespace+`"`)
	if i < 0 {
		return s, "", true
	}
	if s[i] == '"' {
		j := strings.IndexByte(s[i+1:], '"')
		if j < 0 {
			return "", "", false
		}
		word = s[:i] + s[i+1:i+1+j]
		rest = s[i+1+j+1:]
	} else {
		word, rest = s[:i], s[i+1:]
	}
	return word, strings.TrimLeft(rest, whitespace), true
}

// parseKey reads "keytype base64 [comment]" at the start of s.
func parseKey(s string) (ssh.PublicKey, error) {
	fields := strings.Fields(s)
	if len(fields) < 2 {
		return nil, errors.New("want key type and base64 key")
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(fields[0] + " " + fields[1]))
	if err != nil {
		return nil, err
	}
	if key.Type() != fields[0] {
		return nil, fmt.Errorf("key type %s does not match key %s", fields[0], key.Type())
	}
	return key, nil
}

// splitOptions splits the options word (which may hold quoted spaces) from
// the key after it, as OpenSSH's sshkey_advance_past_options does.
func splitOptions(s string) (opts, rest string, err error) {
	quoted := false
	i := 0
	for ; i < len(s) && (quoted || !strings.ContainsRune(" \t", rune(s[i]))); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '"':
			i++
		case s[i] == '"':
			quoted = !quoted
		}
	}
	if quoted {
		return "", "", errors.New("invalid options: unterminated quote")
	}
	return s[:i], strings.TrimLeft(s[i:], whitespace), nil
}

// setOptions applies the options word as OpenSSH's sshsigopt_parse does:
// a comma-separated list of cert-authority, namespaces="...",
// valid-after="..." and valid-before="...", names case-insensitive. Like
// OpenSSH, it passes over empty items (",namespaces=...") and takes
// cert-authority more than once.
func (s *allowedSigner) setOptions(opts string) error {
	for opts != "" {
		switch {
		case hasPrefixFold(opts, "cert-authority"):
			s.ca = true
			opts = opts[len("cert-authority"):]
		case hasPrefixFold(opts, "namespaces="):
			if s.hasNamespaces {
				return errors.New(`multiple "namespaces" clauses`)
			}
			v, rest, err := dequote(opts[len("namespaces="):])
			if err != nil {
				return err
			}
			s.namespaces, s.hasNamespaces, opts = v, true, rest
		case hasPrefixFold(opts, "valid-after="), hasPrefixFold(opts, "valid-before="):
			name, _, _ := strings.Cut(strings.ToLower(opts), "=")
			v, rest, err := dequote(opts[len(name)+1:])
			if err != nil {
				return err
			}
			field := &s.validAfter
			if name == "valid-before" {
				field = &s.validBefore
			}
			if *field != 0 {
				return fmt.Errorf("multiple %q clauses", name)
			}
			if *field, err = parseAbsoluteTime(v); err != nil || *field == 0 {
				return fmt.Errorf("invalid %q time %q", name, v)
			}
			opts = rest
		}
		if opts == "" {
			break
		}
		if opts[0] != ',' {
			return errors.New("unknown key option")
		}
		if opts = opts[1:]; opts == "" {
			return errors.New("unexpected end-of-options")
		}
	}
	if s.validAfter != 0 && s.validBefore != 0 && s.validBefore <= s.validAfter {
		return errors.New(`"valid-before" time is before "valid-after"`)
	}
	return nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// dequote reads a double-quoted value at the start of s, where \" stands
// for a quote (OpenSSH's opt_dequote), and returns it and what follows.
func dequote(s string) (value, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", errors.New("missing start quote")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '"':
			b.WriteByte('"')
			i++
		case s[i] == '"':
			return b.String(), s[i+1:], nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", errors.New("missing end quote")
}

// parseAbsoluteTime reads YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, in UTC
// with a trailing Z or UTC (any case) and in local time otherwise, as
// OpenSSH's parse_absolute_time, and returns Unix seconds. Like strptime
// and mktime there, it takes a day up to 31 in any month and rolls over
// (20230231 is 3 March), and seconds up to 61.
func parseAbsoluteTime(s string) (int64, error) {
	loc := time.Local
	upper := strings.ToUpper(s)
	switch {
	case len(s) > 1 && strings.HasSuffix(upper, "Z"):
		s, loc = s[:len(s)-1], time.UTC
	case len(s) > 3 && strings.HasSuffix(upper, "UTC"):
		s, loc = s[:len(s)-3], time.UTC
	}
	if len(s) != 8 && len(s) != 12 && len(s) != 14 {
		return 0, errors.New("bad length")
	}
	var f [6]int // year, month, day, hour, minute, second
	for i := range f {
		width := 2
		if i == 0 {
			width = 4
		}
		if s == "" {
			break
		}
		n, err := strconv.Atoi(s[:width])
		if err != nil || strings.ContainsAny(s[:width], "+-") {
			return 0, errors.New("not a number")
		}
		f[i], s = n, s[width:]
	}
	if f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 61 {
		return 0, errors.New("out of range")
	}
	t := time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], 0, loc).Unix()
	if t < 0 {
		return 0, errors.New("before 1970")
	}
	return t, nil
}

// validAt reports whether the line's valid-after/valid-before window holds
// t (Unix seconds), both ends included.
func (s *allowedSigner) validAt(t int64) bool {
	return (s.validAfter == 0 || t >= s.validAfter) && (s.validBefore == 0 || t <= s.validBefore)
}

// matchPatternList is OpenSSH's match_pattern_list(str, list, 0) == 1: str
// matches one of the comma-separated patterns and none of the negated
// (!pattern) ones.
func matchPatternList(str, list string) bool {
	positive := false
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if matchPattern(str, p) {
			if neg {
				return false
			}
			positive = true
		}
	}
	return positive
}

// matchPattern is OpenSSH's match_pattern: '*' matches any run of
// characters, '?' any one character, the rest itself (case-sensitive).
func matchPattern(s, p string) bool {
	// Iterative glob with one backtrack point; bytes, as OpenSSH does.
	si, pi, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// namespace is the SSH signature namespace git signs and verifies with.
const namespace = "git"

// verifySSH gives git's verdict on an SSH signature of payload at time t
// (the committer time, git's -Overify-time). git 2.39 runs:
//
//  1. ssh-keygen -Y find-principals: the first line (in file order) that
//     lists the signature's key and whose validity window holds t gives
//     the principals (split at commas); the namespaces= option is not
//     looked at here. No such line: the commit is refused. git still runs
//     check-novalidate to show the signature, so a sound signature makes
//     it unknown-key and a broken one bad-signature.
//  2. ssh-keygen -Y verify -n git -I PRINCIPAL for each of those
//     principals, until one succeeds: the signature must be sound and for
//     namespace "git", and some line whose principals match PRINCIPAL must
//     list the key, allow namespace git and hold t. None succeeds:
//     bad-signature (git reports it as a bad signature).
func (k *Keys) verifySSH(payload []byte, armored string, t time.Time) (Signer, Reason, string) {
	if k.ring != nil {
		// git has no allowed-signers file to look in, and fails.
		return Signer{}, UnknownKey, fmt.Sprintf("an SSH signature, but %s is an OpenPGP keyring", k.name)
	}
	block, _ := pem.Decode([]byte(armored))
	if block == nil || block.Type != sshsig.PEMType {
		return Signer{}, BadSignature, "malformed SSH signature armor"
	}
	sig, err := sshsig.ParseSignature(block.Bytes)
	if err != nil {
		return Signer{}, BadSignature, fmt.Sprintf("malformed SSH signature: %v", err)
	}
	fp := ssh.FingerprintSHA256(sig.PublicKey)
	if sig.Namespace != namespace {
		return Signer{}, BadSignature, fmt.Sprintf("SSH signature by %s is for namespace %q, not %q", fp, sig.Namespace, namespace)
	}
	if err := sshsig.Verify(bytes.NewReader(payload), sig, sig.PublicKey, sig.HashAlgorithm, namespace); err != nil {
		return Signer{}, BadSignature, fmt.Sprintf("SSH signature by %s does not verify: %v", fp, err)
	}
	cert, _ := sig.PublicKey.(*ssh.Certificate)
	if cert != nil {
		fp = ssh.FingerprintSHA256(cert.Key) // as ssh-keygen shows it
		if err := checkCertSignature(cert); err != nil {
			return Signer{}, BadSignature, fmt.Sprintf("SSH certificate for %s: %v", fp, err)
		}
	}
	key := signingKey{blob: sig.PublicKey.Marshal(), cert: cert, when: t.Unix()}
	var (
		first      *allowedSigner
		principals []string
	)
	for i := range k.signers {
		if ps, ok := k.signers[i].findPrincipals(key); ok {
			first, principals = &k.signers[i], ps
			break
		}
	}
	if first == nil {
		return Signer{}, UnknownKey, fmt.Sprintf("SSH key %s is not in %s (or not valid at %s)", fp, k.name, t.UTC().Format(time.RFC3339))
	}
	for _, principal := range principals {
		for i := range k.signers {
			s := &k.signers[i]
			if matchPatternList(principal, s.principals) && s.allows(key, principal) &&
				(!s.hasNamespaces || matchPatternList(namespace, s.namespaces)) {
				return Signer{Principal: principal, Fingerprint: fp}, "", ""
			}
		}
	}
	return Signer{}, BadSignature, fmt.Sprintf("SSH key %s is listed for %s at %s:%d but not allowed for namespace %q", fp, first.principals, k.name, first.line, namespace)
}

// signingKey is the key of an SSH signature, as the allowed-signers lines
// are matched against it.
type signingKey struct {
	blob []byte           // the key (or certificate) in wire format
	cert *ssh.Certificate // nil for a plain key
	when int64            // verify time, Unix seconds
}

// allows is OpenSSH's check_allowed_keys_line without the principal and
// namespace checks: a cert-authority line matches a certificate that its
// key signed and that is valid for principal ("" in find-principals) at
// the verify time; any other line matches its own key exactly. The line's
// validity window must hold the verify time.
func (s *allowedSigner) allows(k signingKey, principal string) bool {
	var ok bool
	if s.ca {
		ok = k.cert != nil && bytes.Equal(k.cert.SignatureKey.Marshal(), s.blob) &&
			certAuthorized(k.cert, k.when, principal)
	} else {
		ok = bytes.Equal(s.blob, k.blob)
	}
	return ok && s.validAt(k.when)
}

// findPrincipals is OpenSSH's check_allowed_keys_line for ssh-keygen -Y
// find-principals: when the line allows the key, the principals git will
// try in turn. For a plain key they are the line's principals as written;
// for a certificate, the certificate's principals that match one of the
// line's patterns (cert_filter_principals, where '!' has no special
// meaning and an empty pattern ends the list).
func (s *allowedSigner) findPrincipals(k signingKey) ([]string, bool) {
	if !s.allows(k, "") {
		return nil, false
	}
	if !s.ca {
		return strings.Split(s.principals, ","), true
	}
	var out []string
	for _, p := range strings.Split(s.principals, ",") {
		if p == "" {
			break
		}
		for _, name := range k.cert.ValidPrincipals {
			if matchPattern(name, p) {
				out = append(out, name)
			}
		}
	}
	return out, len(out) > 0
}

// certAuthorized is OpenSSH's sshkey_cert_check_authority for a user
// certificate that must list principals: valid at t (valid-after
// included, valid-before excluded) and, unless name is "", listing name.
func certAuthorized(c *ssh.Certificate, t int64, name string) bool {
	if c.CertType != ssh.UserCert || t < 0 || uint64(t) < c.ValidAfter || uint64(t) >= c.ValidBefore || len(c.ValidPrincipals) == 0 {
		return false
	}
	return name == "" || slices.Contains(c.ValidPrincipals, name)
}

// checkCertSignature checks the CA's signature on a certificate, as
// OpenSSH does whenever it parses one.
func checkCertSignature(c *ssh.Certificate) error {
	if _, ok := c.SignatureKey.(*ssh.Certificate); ok {
		return errors.New("certificate signed by a certificate")
	}
	if c.Signature == nil {
		return errors.New("certificate has no signature")
	}
	// The signed part is the certificate without its signature, as in
	// x/crypto/ssh's (unexported) bytesForSigning.
	unsigned := *c
	unsigned.Signature = nil
	data := unsigned.Marshal()
	if err := c.SignatureKey.Verify(data[:len(data)-4], c.Signature); err != nil {
		return fmt.Errorf("CA signature does not verify: %w", err)
	}
	return nil
}
