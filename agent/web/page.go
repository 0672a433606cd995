package web

import (
	"html/template"
	"time"

	"github.com/cairn-cm/cairn/agent/status"
)

// page is the small human page at GET /. html/template escapes every value
// for its context; the page has no scripts and no outside assets, and
// reloads itself every 30 seconds.
var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format(time.RFC3339)
	},
	"took": func(r status.Run) string {
		if r.Finished.IsZero() || r.Started.IsZero() {
			return ""
		}
		return r.Finished.Sub(r.Started).Round(time.Millisecond).String()
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>cairn on {{.Host}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { text-align: left; vertical-align: top; padding: .25em .75em .25em 0; }
thead th { border-bottom: 1px solid #999; }
code, pre { font-family: ui-monospace, monospace; font-size: 90%; }
pre { margin: 0; white-space: pre-wrap; }
.bad { color: #b00; } .good { color: #070; }
</style>
</head>
<body>
<h1>cairn on {{.Host}}</h1>
<table>
<tr><th>group</th><td>{{.Group}}{{with .Branch}} (branch <code>{{.}}</code>){{end}}</td></tr>
<tr><th>state</th><td>{{.State}} since {{stamp .StateSince}}</td></tr>
<tr><th>held</th><td>{{with .Held}}<span class="bad">held at <code>{{.Commit}}</code> since {{stamp .Since}}: {{.Reason}}</span>{{else}}no{{end}}</td></tr>
<tr><th>applied</th><td>{{with .Applied}}<code>{{.Commit}}</code>, {{.Steps}} steps, applied {{stamp .Time}}{{if not .Committed.IsZero}}, committed {{stamp .Committed}}{{end}}{{else}}nothing yet{{end}}</td></tr>
<tr><th>target</th><td>{{with .Target}}<code>{{.Commit}}</code>{{with .Branch}} on <code>{{.}}</code>{{end}}{{if not .Committed.IsZero}}, committed {{stamp .Committed}}{{end}}{{if not .Fetched.IsZero}}, fetched {{stamp .Fetched}}{{end}}{{else}}not fetched yet{{end}}</td></tr>
<tr><th>converged</th><td>{{if .Converged}}<span class="good">yes</span>{{else}}<span class="bad">no</span>{{end}}</td></tr>
</table>

<h2>Drift</h2>
{{if .Drift}}<table>
<thead><tr><th>source</th><th>step</th><th>what differs</th></tr></thead>
{{range .Drift}}<tr><td><code>{{.Source}}</code></td><td><code>{{.Step}}</code></td><td><pre>{{.Diff}}</pre></td></tr>
{{end}}</table>
{{else}}<p>none</p>
{{end}}
<h2>Last runs</h2>
{{if .Runs}}<table>
<thead><tr><th>started</th><th>took</th><th>result</th><th>commit</th><th>ops</th><th>states</th><th>error</th></tr></thead>
{{range .Runs}}<tr><td>{{stamp .Started}}</td><td>{{took .}}</td><td>{{.Result}}</td><td><code>{{.Commit}}</code></td><td>{{.Ops}}</td><td>{{range $i, $s := .States}}{{if $i}} → {{end}}{{$s}}{{end}}</td><td>{{.Error}}</td></tr>
{{end}}</table>
{{else}}<p>none yet</p>
{{end}}
{{- if .BadCommits}}
<h2>Bad commits</h2>
<table>
<thead><tr><th>commit</th><th>from</th><th>reason</th><th>since</th></tr></thead>
{{range .BadCommits}}<tr><td><code>{{.Commit}}</code></td><td><code>{{.From}}</code></td><td>{{.Reason}}</td><td>{{stamp .Since}}</td></tr>
{{end}}</table>
{{end}}
<p><a href="metrics">metrics</a> · <a href="status">status (JSON)</a>{{with .Version}} · cairn {{.}}{{end}}</p>
</body>
</html>
`))

// data is what the page template sees: the document and the runs to list.
type data struct {
	status.Document
	Runs []status.Run
}

func pageData(d status.Document) data {
	runs := d.RecentRuns
	if len(runs) == 0 && d.LastRun != nil {
		runs = []status.Run{*d.LastRun}
	}
	return data{Document: d, Runs: runs}
}
