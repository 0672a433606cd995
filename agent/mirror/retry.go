package mirror

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// Attempts is how many times a fetch tries a server that drops its
// connection (reset, refused, closed before it answered) or says it is
// overloaded (HTTP 502, 503, 504), before the failure is returned (a push is
// never tried again: the server may have taken part of it). A fleet
// that a webhook wakes at once meets exactly that: git daemon listens with
// a backlog of 5, and resets connections that come faster than it accepts
// them (what make fleet met, with --max-connections=0) or closes those
// beyond its --max-connections (32 by default); a proxy in front of git
// http-backend answers 502 or 503 while its workers are busy. Without a
// second try such a host would move only at its next poll.
const Attempts = 4

// retryBase is the first wait between attempts; each next wait doubles it.
// A wait is drawn at random from [base/2, base) so that the hosts a
// server dropped together do not come back together.
const retryBase = 500 * time.Millisecond

// transient reports whether err is a failure worth another attempt: the
// server was there but dropped or refused the connection, or said it was
// overloaded. Timeouts are not (Options.Timeout was spent already), nor is
// anything the server answered (no such branch, authentication).
func transient(err error) bool {
	for _, errno := range []syscall.Errno{syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE} {
		if errors.Is(err, errno) {
			return true
		}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var ue *plumbing.UnexpectedError
	if errors.As(err, &ue) {
		var he *githttp.Err
		if errors.As(ue.Err, &he) {
			switch he.StatusCode() {
			case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
				return true
			}
		}
	}
	return false
}

// retry runs try up to Attempts times while it fails transiently, waiting
// between attempts (cancelled with ctx), and returns its last error. wait
// is told each wait, for the log.
func retry(ctx context.Context, try func() error, wait func(attempt int, d time.Duration, err error)) error {
	delay := retryBase
	for attempt := 1; ; attempt++ {
		err := try()
		if err == nil || attempt == Attempts || !transient(err) || ctx.Err() != nil {
			return err
		}
		d := delay/2 + rand.N(delay/2)
		wait(attempt, d, err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay *= 2
	}
}
