// Package systemd is cairn's unit driver and the agent's side of systemd.
//
// Manager enables, disables, starts, stops and restarts units. On a host
// whose PID 1 is systemd, acting on the running system (root /), it talks
// to systemd over D-Bus (go-systemd's dbus client); otherwise — a root
// other than /, or a host or container without systemd — it runs
// `systemctl --root=ROOT` for what works offline (enable, disable,
// is-enabled) and fails with a clear error for what needs a running
// systemd (start, stop, restart, daemon-reload). It satisfies steps.Units
// without importing steps.
//
// UnitFile is the agent's own unit, cairn.service, and Ready, Status,
// Watchdog and WatchdogInterval speak the sd_notify protocol for it.
//
// This package imports only go-systemd and the standard library.
package systemd
