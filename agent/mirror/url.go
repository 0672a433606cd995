package mirror

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// ErrUnsupportedURL is wrapped by the error of [Open] when the remote URL has
// a scheme this package does not fetch from, or cannot be parsed.
var ErrUnsupportedURL = errors.New("unsupported repository URL")

// remote is a parsed remote URL.
type remote struct {
	ep *transport.Endpoint // without a password, and for http(s) without a user
	// user and password are the URL's credentials. For http(s) they are
	// sent by HTTP basic authentication, taken out of the URL so that no
	// go-git error message can show them; for ssh the user is in ep.
	user, password string
	// shown is the URL as it may appear in messages and logs: credentials
	// are replaced by "xxxxx".
	shown string
	// id identifies the repository, without any credentials: a mirror whose
	// recorded id differs from the URL's is re-pointed (see Open).
	id string
}

// defaultPorts are left out of an id, so that "ssh://h/r" and "ssh://h:22/r"
// name the same repository.
var defaultPorts = map[string]int{"git": 9418, "http": 80, "https": 443, "ssh": 22}

// scpLike matches git's scp-like syntax, [user@]host:path, where no slash
// comes before the first colon. It and userinfo are compiled at their
// first use, not by every run of the cairn binary.
var scpLike = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:([^@/]+)@)?([^@/:\s]+):(.*)$`) })

// userinfo matches the user information of something that looks like a URL,
// for redacting strings that failed to parse.
var userinfo = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`//[^/@\s"']*@`) })

// parseRemote parses raw: a local path, a file://, git://, http://, https://
// or ssh:// URL, or an scp-like [user@]host:path.
func parseRemote(raw string) (*remote, error) {
	if raw == "" {
		return nil, fmt.Errorf("empty repository URL: %w", ErrUnsupportedURL)
	}
	if strings.Contains(raw, "://") {
		return parseURL(raw)
	}
	if m := scpLike().FindStringSubmatch(raw); m != nil && len(m[2]) > 1 { // one letter: a Windows drive
		if m[3] == "" {
			return nil, fmt.Errorf("repository URL %s: no path: %w", raw, ErrUnsupportedURL)
		}
		ep := &transport.Endpoint{Protocol: "ssh", User: m[1], Host: m[2], Path: m[3]}
		id := "ssh://" + hostPort(ep) + "/" + strings.TrimPrefix(m[3], "/")
		if ep.User != "" {
			id = "ssh://" + ep.User + "@" + strings.TrimPrefix(id, "ssh://")
		}
		return &remote{ep: ep, shown: raw, id: id}, nil
	}
	abs, err := filepath.Abs(raw)
	if err != nil {
		return nil, fmt.Errorf("repository path %s: %w", raw, err)
	}
	return &remote{ep: &transport.Endpoint{Protocol: "file", Path: abs}, shown: raw, id: "file://" + abs}, nil
}

func parseURL(raw string) (*remote, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole URL, credentials and all
		}
		return nil, fmt.Errorf("repository URL %s: %v: %w", redactString(raw), err, ErrUnsupportedURL)
	}
	r := &remote{}
	scheme := strings.ToLower(u.Scheme)
	if u.User != nil {
		r.user = u.User.Username()
		r.password, _ = u.User.Password()
	}
	switch scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("repository URL %s: a file URL names no host: %w", redactString(raw), ErrUnsupportedURL)
		}
		r.ep = &transport.Endpoint{Protocol: "file", Path: u.Path}
	case "git", "http", "https", "ssh":
		if u.Hostname() == "" {
			return nil, fmt.Errorf("repository URL %s: no host: %w", redactURL(u), ErrUnsupportedURL)
		}
		port := 0
		if p := u.Port(); p != "" {
			if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
				return nil, fmt.Errorf("repository URL %s: bad port %q: %w", redactURL(u), p, ErrUnsupportedURL)
			}
		}
		host := u.Hostname()
		if strings.Contains(host, ":") {
			host = "[" + host + "]" // IPv6, as transport.Endpoint wants it
		}
		r.ep = &transport.Endpoint{Protocol: scheme, Host: host, Port: port, Path: u.Path}
		if scheme == "ssh" {
			r.ep.User = r.user // a user name, not a secret; a password is never used
			// ssh://host/~user/repo names a path relative to a home, as in git.
			if strings.HasPrefix(r.ep.Path, "/~") {
				r.ep.Path = r.ep.Path[1:]
			}
		}
		if scheme == "http" || scheme == "https" {
			r.ep.Path = strings.TrimSuffix(r.ep.Path, "/")
		}
	default:
		return nil, fmt.Errorf("repository URL %s: scheme %q is not one of file, git, http, https, ssh: %w",
			redactURL(u), u.Scheme, ErrUnsupportedURL)
	}
	if r.ep.Path == "" || r.ep.Path == "/" && scheme != "http" && scheme != "https" {
		return nil, fmt.Errorf("repository URL %s: no path: %w", redactURL(u), ErrUnsupportedURL)
	}
	r.shown = redactURL(u)
	id := &url.URL{Scheme: scheme, Host: hostPort(r.ep), Path: r.ep.Path}
	if scheme == "ssh" && r.user != "" {
		id.User = url.User(r.user)
	}
	if scheme == "file" {
		id.Host = ""
	}
	r.id = id.String()
	return r, nil
}

// hostPort is the endpoint's host, with its port unless that is the
// scheme's default.
func hostPort(ep *transport.Endpoint) string {
	if ep.Port == 0 || ep.Port == defaultPorts[ep.Protocol] {
		return ep.Host
	}
	return ep.Host + ":" + strconv.Itoa(ep.Port)
}

// redactURL returns u as a string with any password, and but for ssh any
// user name too (tokens are often passed as one), replaced by "xxxxx".
func redactURL(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	c := *u
	_, hasPassword := u.User.Password()
	switch {
	case !strings.EqualFold(u.Scheme, "ssh"):
		if hasPassword {
			c.User = url.UserPassword("xxxxx", "xxxxx")
		} else {
			c.User = url.User("xxxxx")
		}
	case hasPassword:
		c.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return c.String()
}

// redactString redacts the user information of something that looks like a
// URL but did not parse.
func redactString(s string) string {
	return userinfo().ReplaceAllString(s, "//xxxxx@")
}

// redact removes the remote's credentials from a message, in case a library
// put the URL as given into it: any password, and for http(s) the user
// information of URLs and the user name (which may be a token).
func (r *remote) redact(msg string) string {
	if r.ep.Protocol == "http" || r.ep.Protocol == "https" {
		msg = userinfo().ReplaceAllString(msg, "//xxxxx@")
	}
	secrets := []string{r.password}
	if r.ep.Protocol == "http" || r.ep.Protocol == "https" {
		secrets = append(secrets, r.user)
	}
	for _, s := range secrets {
		for _, v := range []string{s, url.PathEscape(s), url.QueryEscape(s)} {
			if len(v) >= 3 {
				msg = strings.ReplaceAll(msg, v, "xxxxx")
			}
		}
	}
	return msg
}

// Redact returns the repository URL rawURL fit for a log: any password,
// and but for ssh any user name too, replaced by "xxxxx".
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return redactString(rawURL)
	}
	return redactURL(u)
}
