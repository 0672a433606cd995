package journal

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// CanonicalValue checks v as a value of kind and returns its canonical form
// (§1), or an error that says what was expected.
func CanonicalValue(kind ValueKind, v string) (string, error) {
	switch kind {
	case ObjectPath:
		return v, CheckObjectPath(v)
	case SourcePath:
		return v, CheckSourcePath(v)
	case CopySource:
		if v == "-" {
			return v, nil
		}
		return v, CheckSourcePath(v)
	case LinkTarget, Command:
		if v == "" {
			return v, errors.New("must not be empty")
		}
		if strings.IndexByte(v, 0) >= 0 {
			return v, errors.New("must not hold a NUL byte")
		}
		return v, nil
	case Mode:
		return canonicalMode(v)
	case Hash:
		return canonicalHash(v)
	case Duration:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return v, fmt.Errorf("%q is not a positive duration (like 30s or 1m30s)", v)
		}
		return d.String(), nil
	case Bool:
		if v != "true" && v != "false" {
			return v, fmt.Errorf("%q is not true or false", v)
		}
		return v, nil
	case Name:
		return v, checkName(v)
	case ID:
		n, err := ParseID(v)
		if err != nil {
			return v, err
		}
		return strconv.FormatUint(uint64(n), 10), nil
	case NameList:
		for _, n := range strings.Split(v, ",") {
			if err := checkName(n); err != nil {
				return v, err
			}
		}
		return v, nil
	case CheckKind:
		if !slices.Contains(CheckKinds, v) {
			return v, fmt.Errorf("unknown check kind %q (want one of %s)%s", v, strings.Join(CheckKinds, ", "), didYouMean(v, CheckKinds))
		}
		return v, nil
	}
	if v == "" {
		return v, errors.New("must not be empty")
	}
	return v, nil
}

// The limits of Linux on a path and on one of its components.
const (
	// MaxPath is the longest object path, in bytes: PATH_MAX (4096) counts
	// the terminating NUL, so a path the kernel takes has at most 4095.
	// It bounds the path beneath the root, not the root joined to it.
	MaxPath = 4095
	// MaxName is the longest component of an object path, in bytes
	// (NAME_MAX).
	MaxName = 255
)

// CheckObjectPath reports whether p is an object path (§2): absolute and
// clean, with no "." or ".." segment, no "//", no trailing "/", and not "/";
// at most MaxPath bytes long, and no component longer than MaxName.
func CheckObjectPath(p string) error {
	switch {
	case p == "":
		return errors.New("path is empty")
	case p[0] != '/':
		return fmt.Errorf("path %s is not absolute", quoteShort(p))
	case p == "/":
		return errors.New("path / cannot be managed")
	case len(p) > MaxPath:
		// Checked before anything else reads the whole path.
		return fmt.Errorf("path %s is %d bytes long; a path has at most %d (PATH_MAX)", quoteShort(p), len(p), MaxPath)
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("path %q holds a NUL byte", p)
	case path.Clean(p) != p:
		return fmt.Errorf("path %q is not clean (no '.', '..', '//' or trailing '/'; did you mean %q?)", p, path.Clean(p))
	}
	for i := 1; i < len(p); {
		c, end := nextComponent(p, i)
		if len(c) > MaxName {
			return fmt.Errorf("path %s: component %s is %d bytes long; a component has at most %d (NAME_MAX)", quoteShort(p), quoteShort(c), len(c), MaxName)
		}
		i = end + 1
	}
	return nil
}

// quoteShort quotes s, cut to its first 64 bytes and "..." if it is longer,
// so that a message about a huge value stays readable. The cut falls
// between runes: a name of multi-byte runes is not shown with half of one
// ("\xc3").
func quoteShort(s string) string {
	if len(s) <= 64 {
		return strconv.Quote(s)
	}
	n := 64
	for i := 1; i < utf8.UTFMax && !utf8.RuneStart(s[n]); i++ {
		n-- // back to the start of the rune cut, if s is UTF-8 there
	}
	return strconv.Quote(s[:n]) + "..."
}

// CheckSourcePath reports whether p is a clean relative path that cannot
// climb out of its base (§2).
func CheckSourcePath(p string) error {
	switch {
	case p == "":
		return errors.New("path is empty")
	case p[0] == '/':
		return fmt.Errorf("path %q must be relative", p)
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("path %q holds a NUL byte", p)
	case path.Clean(p) != p || p == ".":
		return fmt.Errorf("path %q is not clean (did you mean %q?)", p, path.Clean(p))
	case p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("path %q climbs out of its base", p)
	}
	return nil
}

func canonicalMode(v string) (string, error) {
	if len(v) == 4 && isOctal(v) {
		return v, nil // already canonical
	}
	n, err := strconv.ParseUint(v, 8, 32)
	if err != nil || v == "" || len(v) > 5 || n > 0o7777 || v[0] == '+' {
		return v, fmt.Errorf("%q is not an octal mode (like 0644)", v)
	}
	return fmt.Sprintf("%04o", n), nil
}

// ParseMode returns the permission bits of a canonical mode.
func ParseMode(v string) uint32 {
	n, _ := strconv.ParseUint(v, 8, 32)
	return uint32(n)
}

// hexDigit classifies bytes: 1 for 0-9 and a-f, 2 for A-F, 0 otherwise.
var hexDigit = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = 1
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = 1
		t[c-'a'+'A'] = 2
	}
	return t
}()

func canonicalHash(v string) (string, error) {
	if len(v) != 64 {
		return v, fmt.Errorf("%q is not a sha256 (64 hex digits)", v)
	}
	var class uint8 = 1
	for i := 0; i < 64; i++ {
		c := hexDigit[v[i]]
		if c == 0 {
			return v, fmt.Errorf("%q is not a sha256 (64 hex digits)", v)
		}
		class |= c
	}
	if class != 1 {
		v = strings.ToLower(v)
	}
	return v, nil
}

// MaxID is the largest user or group id. One more, 4294967295, is
// (uid_t)-1, which chown(2) takes for "leave unchanged" and the shadow
// tools refuse; larger numbers do not fit in a uid_t at all.
const MaxID = 4294967294

// ParseID parses a numeric user or group id: decimal digits, at most MaxID.
func ParseID(v string) (uint32, error) {
	if !isDigits(v) {
		return 0, fmt.Errorf("%s is not a numeric id", quoteShort(v))
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n > MaxID {
		return 0, fmt.Errorf("id %s is out of range: ids go from 0 to %d (4294967295 is (uid_t)-1, which chown takes for \"no change\")", quoteShort(v), MaxID)
	}
	return uint32(n), nil
}

// isDigits reports whether v is a non-empty string of decimal digits.
func isDigits(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return v != ""
}

// checkName accepts a user, group or package name, or a numeric id: a name
// of digits only is an id, and must be in range (ParseID).
func checkName(v string) error {
	if v == "" {
		return errors.New("name is empty")
	}
	if isDigits(v) {
		_, err := ParseID(v)
		return err
	}
	if len(v) > 64 {
		return fmt.Errorf("name %q is longer than 64 bytes", v)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '.' || c == '+' || c == ':' || (c == '-' && i > 0) || (c == '$' && i == len(v)-1 && i > 0)
		if !ok {
			return fmt.Errorf("%q is not a valid name", v)
		}
	}
	return nil
}

// CheckTarget checks the TARGET of a CHECK step of the given kind.
func CheckTarget(kind, target string) error {
	switch kind {
	case "file":
		return CheckObjectPath(target)
	case "http":
		u, err := url.Parse(target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%q is not an http:// or https:// URL", target)
		}
	case "tcp":
		host, port, err := net.SplitHostPort(target)
		if err != nil || host == "" {
			return fmt.Errorf("%q is not HOST:PORT", target)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("%q has no valid port", target)
		}
	case "unit-active":
		if strings.ContainsAny(target, "/ ") {
			return fmt.Errorf("%q is not a unit name", target)
		}
	}
	if target == "" {
		return errors.New("target is empty")
	}
	return nil
}

func isOctal(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '7' {
			return false
		}
	}
	return true
}
