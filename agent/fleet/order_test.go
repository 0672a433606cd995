package fleet

import (
	"slices"
	"testing"
	"time"
)

// TestSummarizeOrder: hosts are listed with the numbers in their names
// and instances in numeric order (web-2 before web-10, 127.0.0.9 before
// 127.0.0.10), as people count them; ties fall back to bytes.
func TestSummarizeOrder(t *testing.T) {
	var hosts []Host
	for _, h := range [][2]string{
		{"web-10", "127.0.0.10:9479"}, {"web-2", "127.0.0.2:9479"}, {"web-1", "127.0.0.1:9479"},
		{"web-02", "127.0.0.3:9479"}, {"web-100", "127.0.0.100:9479"}, {"web", "127.0.0.4:9479"},
		{"web-9", "127.0.0.10:9479"}, {"web-9", "127.0.0.9:9479"}, {"web-a", "127.0.0.5:9479"},
	} {
		hosts = append(hosts, Host{Host: h[0], Instance: h[1], Group: "web", Up: true})
	}
	groups := Summarize(hosts)
	if len(groups) != 1 {
		t.Fatalf("groups %+v, want 1", groups)
	}
	var got []string
	for _, h := range groups[0].Lagging {
		got = append(got, h.Host+" "+h.Instance)
	}
	want := []string{"web 127.0.0.4:9479", "web-1 127.0.0.1:9479", "web-02 127.0.0.3:9479", "web-2 127.0.0.2:9479",
		"web-9 127.0.0.9:9479", "web-9 127.0.0.10:9479", "web-10 127.0.0.10:9479", "web-100 127.0.0.100:9479", "web-a 127.0.0.5:9479"}
	if !slices.Equal(got, want) {
		t.Errorf("lagging hosts in order\n%q\nwant\n%q", got, want)
	}
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "a", 0}, {"a2", "a10", -1}, {"a10", "a2", 1}, {"a02", "a2", -1}, {"a2", "a02", 1},
		{"a", "a1", -1}, {"1", "a", -1}, {"x9y", "x9z", -1}, {"00", "0", 1}, {"10.0.0.9", "10.0.0.10", -1},
		{"99999999999999999999999", "100000000000000000000000", -1},
	} {
		if got := natural(c.a, c.b); got != c.want {
			t.Errorf("natural(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// TestPrintable: printable names are kept; a control character, a line
// break or a byte that is not UTF-8 quotes the whole name.
func TestPrintable(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"web-01", "web-01"},
		{"", ""},
		{"hôte 7", "hôte 7"},
		{`a"b\c`, `a"b\c`},
		{"web-01\ncommit: 0000", `"web-01\ncommit: 0000"`},
		{"web\x1b[2J", `"web\x1b[2J"`},
		{"a\tb", `"a\tb"`},
		{"a\rb", `"a\rb"`},
		{"\xff", `"\xff"`},
		{"a\u2028b", `"a\u2028b"`},
	} {
		if got := Printable(c.in); got != c.want {
			t.Errorf("Printable(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

// TestSummarizeTipSameSecond: two commits of one second (a script's
// commit and its fix): the tip is the target of the host that fetched
// last, not the lower hash, whatever order the hosts come in.
func TestSummarizeTipSameSecond(t *testing.T) {
	second := time.Unix(1700000000, 0).UTC()
	older, newer := "1111111111111111111111111111111111111111", "ffffffffffffffffffffffffffffffffffffffff"
	a := Host{Instance: "10.0.0.1:9479", Host: "web-1", Group: "web", Up: true, Applied: older, Target: older,
		TargetCommitted: second, LastFetch: second.Add(time.Minute)}
	b := Host{Instance: "10.0.0.2:9479", Host: "web-2", Group: "web", Up: true, Applied: newer, Target: newer,
		TargetCommitted: second, LastFetch: second.Add(2 * time.Minute)}
	for _, hosts := range [][]Host{{a, b}, {b, a}} {
		g := Summarize(hosts)[0]
		if g.Tip != newer || len(g.Lagging) != 1 || g.Lagging[0].Host != "web-1" {
			t.Errorf("tip %s, lagging %+v; want the tip %s that web-2 fetched last, and web-1 lagging", g.Tip, g.Lagging, newer)
		}
	}
}
