package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
)

// ShutdownTimeout bounds the graceful shutdown of Serve: requests still
// running after it are cut off.
const ShutdownTimeout = 5 * time.Second

// Serve serves h on the TCP address addr (host:port; port 0 picks a free
// one) until ctx is done, through the Prometheus exporter-toolkit: the
// web-config file webConfigFile ("" for none) gives TLS and basic auth, in
// the format of https://prometheus.io/docs/prometheus/latest/configuration/https/,
// and is read again for each new connection.
//
// Serve checks the web-config file and opens the listener first, and fails
// with an error if either fails; then it calls ready (if not nil) with the
// address it listens on, and serves. When ctx is done it shuts the server
// down gracefully (for ShutdownTimeout at most, then it closes the
// connections left) and returns nil. It returns an error if the server
// stops by itself.
func Serve(ctx context.Context, addr, webConfigFile string, h http.Handler, log *slog.Logger, ready func(net.Addr)) error {
	if addr == "" {
		return errors.New("web: no address to listen on")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := web.Validate(webConfigFile); err != nil {
		return fmt.Errorf("web config %s: %w", webConfigFile, err)
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	defer l.Close() // for the ways out of web.Serve before it serves

	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	systemdSocket := false
	flags := &web.FlagConfig{
		WebListenAddresses: &[]string{addr},
		WebSystemdSocket:   &systemdSocket,
		WebConfigFile:      &webConfigFile,
	}
	done := make(chan error, 1)
	go func() { done <- web.Serve(l, srv, flags, log) }()
	if ready != nil {
		ready(l.Addr())
	}

	select {
	case err := <-done:
		return fmt.Errorf("web: serve on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("web: graceful shutdown cut short", "err", err)
		srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("web: serve on %s: %w", l.Addr(), err)
	}
	return nil
}
