package mirror

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRemote(t *testing.T) {
	abs, err := filepath.Abs("rel/repo")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in, shown, id  string
		proto, host    string
		port           int
		path, user     string
		secretUser     string // sent by HTTP basic authentication
		secretPassword string
	}{
		{in: "/srv/git/site.git", shown: "/srv/git/site.git", id: "file:///srv/git/site.git", proto: "file", path: "/srv/git/site.git"},
		{in: "rel/repo", shown: "rel/repo", id: "file://" + abs, proto: "file", path: abs},
		{in: "./a:b", shown: "./a:b", id: "file://" + filepath.Join(filepath.Dir(abs), "..", "a:b"), proto: "file", path: filepath.Clean(filepath.Join(filepath.Dir(abs), "..", "a:b"))},
		{in: "file:///srv/git/site.git", shown: "file:///srv/git/site.git", id: "file:///srv/git/site.git", proto: "file", path: "/srv/git/site.git"},
		{in: "git://example.com/site.git", shown: "git://example.com/site.git", id: "git://example.com/site.git", proto: "git", host: "example.com", path: "/site.git"},
		{in: "git://example.com:9418/site.git", shown: "git://example.com:9418/site.git", id: "git://example.com/site.git", proto: "git", host: "example.com", port: 9418, path: "/site.git"},
		{in: "https://example.com/org/site.git/", shown: "https://example.com/org/site.git/", id: "https://example.com/org/site.git", proto: "https", host: "example.com", path: "/org/site.git"},
		{in: "HTTP://[::1]:8080/site", shown: "http://[::1]:8080/site", id: "http://[::1]:8080/site", proto: "http", host: "[::1]", port: 8080, path: "/site"},
		{in: "https://bot:tok3n@example.com/site.git", shown: "https://xxxxx:xxxxx@example.com/site.git", id: "https://example.com/site.git",
			proto: "https", host: "example.com", path: "/site.git", secretUser: "bot", secretPassword: "tok3n"},
		{in: "https://tok3n@example.com/site.git", shown: "https://xxxxx@example.com/site.git", id: "https://example.com/site.git",
			proto: "https", host: "example.com", path: "/site.git", secretUser: "tok3n"},
		{in: "ssh://git@example.com:2222/srv/site.git", shown: "ssh://git@example.com:2222/srv/site.git", id: "ssh://git@example.com:2222/srv/site.git",
			proto: "ssh", host: "example.com", port: 2222, path: "/srv/site.git", user: "git", secretUser: "git"},
		{in: "ssh://git:pw@example.com/~git/site.git", shown: "ssh://git:xxxxx@example.com/~git/site.git", id: "ssh://git@example.com/~git/site.git",
			proto: "ssh", host: "example.com", path: "~git/site.git", user: "git", secretUser: "git", secretPassword: "pw"},
		{in: "git@example.com:org/site.git", shown: "git@example.com:org/site.git", id: "ssh://git@example.com/org/site.git",
			proto: "ssh", host: "example.com", path: "org/site.git", user: "git"},
		{in: "example.com:/srv/site.git", shown: "example.com:/srv/site.git", id: "ssh://example.com/srv/site.git",
			proto: "ssh", host: "example.com", path: "/srv/site.git"},
	} {
		r, err := parseRemote(c.in)
		if err != nil {
			t.Errorf("parseRemote(%q): %v", c.in, err)
			continue
		}
		if r.shown != c.shown || r.id != c.id || r.ep.Protocol != c.proto || r.ep.Host != c.host ||
			r.ep.Port != c.port || r.ep.Path != c.path || r.ep.User != c.user || r.ep.Password != "" ||
			r.user != c.secretUser || r.password != c.secretPassword {
			t.Errorf("parseRemote(%q) = shown %q id %q, %s host %q port %d path %q user %q password %q, auth %q:%q",
				c.in, r.shown, r.id, r.ep.Protocol, r.ep.Host, r.ep.Port, r.ep.Path, r.ep.User, r.ep.Password, r.user, r.password)
		}
	}
}

func TestParseRemoteRefuses(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "empty",
		"ftp://u:s3cret@example.com/x.git": "ftp://xxxxx:xxxxx@example.com/x.git",
		"svn+ssh://example.com/x":          `scheme "svn+ssh"`,
		"https://u:s3cret@exa mple.com/x":  "https://xxxxx@exa mple.com/x",
		"file://otherhost/srv/x.git":       "names no host",
		"ssh://example.com":                "no path",
		"git://example.com:99999/x.git":    "bad port",
		"https:///x.git":                   "no host",
		"git@example.com:":                 "no path",
		"https://u:s3cret@example.com:x/y": "https://xxxxx@example.com:x/y",
	} {
		_, err := parseRemote(in)
		if !errors.Is(err, ErrUnsupportedURL) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("parseRemote(%q) = %v; want ErrUnsupportedURL saying %q, without the password", in, err, want)
		}
	}
}

func TestRedact(t *testing.T) {
	r, err := parseRemote("https://bot:p%40ss@example.com/site.git")
	if err != nil {
		t.Fatal(err)
	}
	msg := r.redact(`Get "https://bot:p%40ss@example.com/site.git": p@ss refused`)
	if strings.Contains(msg, "p@ss") || strings.Contains(msg, "p%40ss") || strings.Contains(msg, "bot") {
		t.Errorf("redact left credentials: %q", msg)
	}
}
