package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cairn-cm/cairn/agent/status"
)

// Options are what the handler serves. Gatherer and Status are required;
// Handler calls the functions from the requests' goroutines, so they must
// be safe to call at once from many, and quick.
type Options struct {
	// Gatherer gives the metrics of GET /metrics.
	Gatherer prometheus.Gatherer
	// Status gives the document of GET /status and of the page at GET /.
	Status func() status.Document
	// Trigger asks for a run (POST /trigger): it starts one now, or queues
	// one if a run is going. It must not wait for the run. Nil answers 503.
	Trigger func()
	// Alive tells whether the run loop is alive (GET /healthz). Nil is
	// always alive.
	Alive func() bool
	// Log gets the errors of the metrics handler and a line for each
	// trigger. Nil discards them.
	Log *slog.Logger
}

// Handler returns the agent's HTTP handler: GET /metrics, GET /healthz,
// GET /status, POST /trigger and GET /. A path it does not know answers
// 404, a method a path does not take 405 with an Allow header; every GET
// also answers HEAD.
func Handler(o Options) http.Handler {
	if o.Gatherer == nil || o.Status == nil {
		panic("web: Handler needs a Gatherer and a Status")
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      promLogger{log},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		noCache(w)
		if o.Alive != nil && !o.Alive() {
			text(w, http.StatusServiceUnavailable, "run loop not alive")
			return
		}
		text(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		doc := o.Status()
		b, err := json.MarshalIndent(&doc, "", "  ")
		if err != nil {
			log.Error("web: encode status", "err", err)
			text(w, http.StatusInternalServerError, "cannot encode the status")
			return
		}
		noCache(w)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(append(b, '\n'))
	})
	mux.HandleFunc("POST /trigger", func(w http.ResponseWriter, r *http.Request) {
		if o.Trigger == nil {
			text(w, http.StatusServiceUnavailable, "no run loop to trigger")
			return
		}
		log.Info("run triggered over HTTP", "remote", r.RemoteAddr)
		o.Trigger()
		text(w, http.StatusAccepted, "run triggered")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		if err := page().Execute(&b, pageData(o.Status(), time.Now())); err != nil {
			log.Error("web: render the page", "err", err)
			text(w, http.StatusInternalServerError, "cannot render the page")
			return
		}
		noCache(w)
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		w.WriteHeader(http.StatusOK)
		w.Write(b.Bytes())
	})
	return mux
}

// text answers code with a line of plain text.
func text(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg)
}

func noCache(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }

// promLogger passes promhttp's errors to slog.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Error("web: serve metrics", "err", fmt.Sprint(v...))
}
