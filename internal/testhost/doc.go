// Package testhost gives tests a real Debian 12 host whose PID 1 is
// systemd: a copy of the root that scripts/testhost.sh builds once per
// machine with debootstrap and caches (in $CAIRN_TEST_CACHE, default
// /var/cache/cairn-test), booted with systemd-nspawn -b. Tests of what only
// a real systemd shows use it: units started over D-Bus, sd_notify and the
// watchdog, the journal, a package's maintainer scripts.
package testhost
