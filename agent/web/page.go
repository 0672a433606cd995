package web

import (
	"fmt"
	"html/template"
	"strings"
	"sync"
	"time"

	"github.com/cairn-cm/cairn/agent/status"
)

// refreshSeconds is how often the page reloads itself (a meta refresh, no
// script).
const refreshSeconds = 30

// pageCSP is the Content-Security-Policy of the page: nothing may load or
// run but the page's own inline style and the empty icon that keeps the
// browser from asking for /favicon.ico; no base, no forms, no framing.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// page is the small human page at GET /. html/template escapes every value
// for its context; the page has no scripts and no outside assets, and
// reloads itself every refreshSeconds. It is parsed at its first use, not
// when the package is initialised: every run of the cairn binary, most of
// which serve no page, would otherwise pay its parse.
var page = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("page").Funcs(template.FuncMap{
		"stamp": stamp,
		"took": func(r status.Run) string {
			if r.Finished.IsZero() || r.Started.IsZero() {
				return ""
			}
			return r.Finished.Sub(r.Started).Round(time.Millisecond).String()
		},
		"short":  short,
		"plural": plural,
		"bad":    badResult,
	}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{{.Refresh}}">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>{{.Host}} · {{if .Good}}converged{{else}}not converged{{end}} · cairn</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; line-height: 1.35; }
h1 { font-size: 1.6em; margin: 0 0 .3em; }
h2 { font-size: 1.2em; margin: 1.5em 0 .4em; }
table { border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: .25em .9em .25em 0; }
thead th { border-bottom: 1px solid #999; }
tbody tr + tr td { border-top: 1px solid #8884; }
.facts th { font-weight: 600; white-space: nowrap; }
code, pre { font-family: ui-monospace, monospace; font-size: 90%; }
pre { margin: 0; white-space: pre-wrap; }
.step { word-break: break-all; }
.diff { margin: .3em 0 0 1.5em; }
.when, time { white-space: nowrap; }
.verdict { display: inline-block; padding: .3em .7em; border-radius: .3em; font-weight: 600; margin: 0 0 1em; }
.verdict.good { background: #d8f0d8; color: #063; } .verdict.bad { background: #f8dcdc; color: #900; }
.good { color: #070; } .bad { color: #b00; }
.ago, footer { color: #777; }
footer { margin-top: 2em; font-size: 90%; }
</style>
</head>
<body>
<h1>cairn on {{.Host}}</h1>
<p class="verdict {{if .Good}}good{{else}}bad{{end}}">{{.Verdict}}</p>
<table class="facts">
<tr><th>group</th><td>{{or .Group "—"}}{{with .Branch}} (branch <code>{{.}}</code>){{end}}</td></tr>
<tr><th>state</th><td>{{or .State "—"}}{{if not .StateSince.IsZero}} since {{stamp .StateSince}} <span class="ago">({{$.Ago .StateSince}})</span>{{end}}</td></tr>
<tr><th>held</th><td>{{with .Held}}<span class="bad">held at <code>{{.Commit}}</code> since {{stamp .Since}}: {{.Reason}}</span>{{else}}no{{end}}</td></tr>
<tr><th>applied</th><td>{{with .Applied}}<code>{{.Commit}}</code> ({{plural .Steps "step"}}), applied {{stamp .Time}} <span class="ago">({{$.Ago .Time}})</span>{{if not .Committed.IsZero}}, committed {{stamp .Committed}}{{end}}{{else}}nothing yet{{end}}</td></tr>
<tr><th>target</th><td>{{with .Target}}<code>{{.Commit}}</code>{{with .Branch}} on <code>{{.}}</code>{{end}}{{if $.Behind}} <span class="bad">(not applied)</span>{{end}}{{if not .Committed.IsZero}}, committed {{stamp .Committed}}{{end}}{{if not .Fetched.IsZero}}, fetched {{stamp .Fetched}} <span class="ago">({{$.Ago .Fetched}})</span>{{end}}{{else}}not fetched yet{{end}}</td></tr>
<tr><th>converged</th><td>{{if .Converged}}<span class="good">yes</span>{{else}}<span class="bad">no</span>{{end}}</td></tr>
<tr><th>drift</th><td>{{if .Drift}}<a href="#drift" class="bad">{{plural (len .Drift) "step"}}</a>{{else}}none{{end}}</td></tr>
</table>

<h2 id="drift">Drift: {{if .Drift}}{{plural (len .Drift) "step"}}{{else}}none{{end}}</h2>
{{if .Drift}}<table>
<thead><tr><th>source</th><th>step, and what differs</th></tr></thead>
<tbody>
{{range .Drift}}<tr><td><code>{{.Source}}</code></td><td><code class="step">{{.Step}}</code><pre class="diff">{{.Diff}}</pre></td></tr>
{{end}}</tbody>
</table>
{{else}}<p>The live state matches the applied journal.</p>
{{end}}
<h2>Last runs</h2>
{{if .Runs}}<table>
<thead><tr><th>started</th><th>took</th><th>result</th><th>commit</th><th>ops</th><th>states</th><th>error</th></tr></thead>
<tbody>
{{range .Runs}}<tr><td class="when">{{stamp .Started}}</td><td class="when">{{took .}}</td><td{{if bad .Result}} class="bad"{{end}}>{{.Result}}</td><td><code title="{{.Commit}}">{{short .Commit}}</code>{{if and .From (ne .From .Commit)}} <span class="ago">from <code title="{{.From}}">{{short .From}}</code></span>{{end}}</td><td>{{.Ops}}</td><td>{{range $i, $s := .States}}{{if $i}} → {{end}}{{$s}}{{end}}</td><td>{{.Error}}</td></tr>
{{end}}</tbody>
</table>
{{else}}<p>none yet</p>
{{end}}
{{- if .BadCommits}}
<h2>Bad commits</h2>
<table>
<thead><tr><th>commit</th><th>from</th><th>reason</th><th>since</th></tr></thead>
<tbody>
{{range .BadCommits}}<tr><td><code title="{{.Commit}}">{{short .Commit}}</code></td><td><code title="{{.From}}">{{short .From}}</code></td><td>{{.Reason}}</td><td class="when">{{stamp .Since}}</td></tr>
{{end}}</tbody>
</table>
{{end}}
<footer><a href="metrics">metrics</a> · <a href="status">status (JSON)</a> · as of {{stamp .Now}}, reloads every {{.Refresh}} s{{with .Version}} · cairn {{.}}{{end}}</footer>
</body>
</html>
`))
})

// data is what the page template sees: the document, the runs to list,
// and what the page says of them at the time now.
type data struct {
	status.Document
	Runs    []status.Run
	Now     time.Time
	Refresh int
	// Verdict sums the host up in a few words; Good is true when it is
	// converged and nothing is wrong.
	Verdict string
	Good    bool
	// Behind is true when a target is known that is not the applied commit.
	Behind bool
}

func pageData(d status.Document, now time.Time) data {
	runs := d.RecentRuns
	if len(runs) == 0 && d.LastRun != nil {
		runs = []status.Run{*d.LastRun}
	}
	p := data{Document: d, Runs: runs, Now: now, Refresh: refreshSeconds}
	p.Behind = d.Target != nil && (d.Applied == nil || d.Applied.Commit != d.Target.Commit)
	p.Verdict, p.Good = verdict(d, p.Behind)
	return p
}

// verdict sums up the document: "converged", or "not converged" and what
// is wrong, most pressing first.
func verdict(d status.Document, behind bool) (string, bool) {
	var why []string
	if d.Held != nil {
		why = append(why, "held")
	}
	if d.LastRun != nil && badResult(d.LastRun.Result) {
		why = append(why, "last run "+d.LastRun.Result)
	}
	switch {
	case d.Applied == nil:
		why = append(why, "nothing applied yet")
	case behind:
		why = append(why, "target not applied")
	}
	if len(d.Drift) > 0 {
		why = append(why, plural(len(d.Drift), "step")+" drifted")
	}
	if d.Converged && len(why) == 0 {
		return "converged", true
	}
	if len(why) == 0 {
		return "not converged", false
	}
	return "not converged: " + strings.Join(why, ", "), false
}

// Ago is how long before the page's time t was, roughly: "12s ago",
// "5m ago", "3h ago", "2d ago".
func (p data) Ago(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	d := p.Now.Sub(t)
	if d < 0 {
		return "in the future"
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	default:
		return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
	}
}

// stamp shows a time in UTC, RFC 3339, as a <time> element that does not
// break across lines; "—" for the zero time. The text is made here from
// the time alone, so it needs no escaping.
func stamp(t time.Time) template.HTML {
	if t.IsZero() {
		return "—"
	}
	s := t.UTC().Format(time.RFC3339)
	return template.HTML(`<time datetime="` + s + `">` + s + `</time>`)
}

// short shortens a full commit hash to 12 digits, as git log --oneline
// would at least; anything else is left whole.
func short(commit string) string {
	if (len(commit) == 40 || len(commit) == 64) && strings.Trim(commit, "0123456789abcdef") == "" {
		return commit[:12]
	}
	return commit
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// badResult tells whether a run's result is a failure of some kind.
func badResult(r string) bool { return r == "failed" || r == "broken" || r == "refused" }
