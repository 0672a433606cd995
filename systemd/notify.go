package systemd

import (
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// The sd_notify(3) helpers below tell systemd how the agent is doing, over
// the socket named by $NOTIFY_SOCKET. Outside systemd (no NOTIFY_SOCKET)
// each is a no-op that returns false and no error; they return true when
// the message was sent.

// Ready tells systemd that the agent has started (READY=1): with
// Type=notify, systemctl start returns, and units ordered after it start,
// only then.
func Ready() (bool, error) { return notify(daemon.SdNotifyReady) }

// Reloading tells systemd that the agent is about to re-execute itself in
// the same process (RELOADING=1): the unit shows "reloading" until the new
// program sends READY=1, which Ready does. With Type=notify (not
// notify-reload) systemd wants nothing more; a READY=1 that never comes
// only ends the reload at TimeoutStartSec=, and the watchdog still
// watches the process.
func Reloading() (bool, error) { return notify(daemon.SdNotifyReloading) }

// Stopping tells systemd that the agent is shutting down (STOPPING=1).
func Stopping() (bool, error) { return notify(daemon.SdNotifyStopping) }

// Status sets the status line systemctl status shows (STATUS=...). A
// newline would end the field, so newlines become spaces.
func Status(status string) (bool, error) {
	return notify("STATUS=" + strings.ReplaceAll(status, "\n", " "))
}

// Watchdog pings the watchdog (WATCHDOG=1). With WatchdogSec= set, systemd
// kills and restarts the agent when no ping comes within that time; send
// one at least every WatchdogInterval.
func Watchdog() (bool, error) { return notify(daemon.SdNotifyWatchdog) }

// WatchdogInterval returns how often to ping the watchdog: half the
// watchdog timeout systemd set for this process ($WATCHDOG_USEC, if
// $WATCHDOG_PID is this process), or 0 when no watchdog watches it.
func WatchdogInterval() (time.Duration, error) {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0, fmt.Errorf("systemd watchdog: %w", err)
	}
	return d / 2, nil
}

func notify(state string) (bool, error) {
	sent, err := daemon.SdNotify(false, state)
	if err != nil {
		return false, fmt.Errorf("sd_notify %s: %w", state, err)
	}
	return sent, nil
}
