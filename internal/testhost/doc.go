// Package testhost gives tests a real Debian 12 host whose PID 1 is
// systemd: a fresh copy of the root that scripts/testhost.sh builds once per
// machine with debootstrap and caches (in $CAIRN_TEST_CACHE, default
// /var/cache/cairn-test), booted with systemd-nspawn -b. It serves the
// tests of what only a real systemd shows: units started over D-Bus,
// sd_notify and the watchdog, the journal, a package's maintainer scripts.
//
// # Use
//
//  1. [Boot] a host for the test, with [Options]: the machine's network
//     or a private one (loopback only), directories of the machine shared
//     read-only or not ([Bind]). Boot returns when systemd inside says
//     the system is running or degraded.
//  2. Put files in from the machine's side: [Host.WriteFile],
//     [Host.CopyIn] (a built cairn binary), or anything at [Host.Root];
//     read them back with [Host.ReadFile]. Inside sees them at once.
//     [Host.InstallCairn] installs cairn as its package lays it out
//     (without dpkg): the static binary [Cairn] builds once per test
//     process, systemd/cairn.service and /etc/default/cairn.
//  3. Run commands inside: [Host.Run] (the output, and the test fails
//     unless it exits 0) or [Host.Exec] (the output and exit code, under a
//     context). systemctl, journalctl and busctl there talk to the host's
//     own systemd and D-Bus.
//  4. Nothing to stop: when the test ends, its cleanup kills the commands
//     still running inside, powers the host off (systemctl poweroff,
//     SIGKILL of its PID 1 after 30 seconds), removes its root and its
//     cgroups, and fails the test if a process of it still runs ([Procs]).
//     The hosts of a test process killed before its cleanup (go test's
//     -timeout) are stopped by the next Boot on the machine.
//
// # What a host is
//
//   - Debian 12, variant minbase, with systemd, systemd-sysv, dbus,
//     ca-certificates, curl and procps installed, full apt lists, and the
//     .debs of nginx-light and its dependencies in the apt cache (not
//     installed): apt-get install --no-download nginx-light works with no
//     network. Getty and systemd-networkd-wait-online are masked.
//   - Its name (a unique cairn-XXXXXXXX) is its host name, and its machine
//     id is derived from it; the journal is persistent, in
//     /var/log/journal.
//   - On the machine's network it has the machine's interfaces, ports and
//     /etc/resolv.conf: two hosts running the same server conflict, as two
//     processes of the machine would. HTTPS inside trusts Debian's
//     certificate authorities only: behind a proxy with an authority of its
//     own, bind the machine's /etc/ssl/certs read-only.
//   - Its root is in /dev/shm when that is a tmpfs, else in the temporary
//     directory. Its cgroups are those systemd-nspawn gives on the machine:
//     on a machine with cgroup v1 (hybrid), the controllers are read-only
//     inside and units stay at their root, so resource limits
//     (MemoryMax=, CPUQuota=) are accepted but not enforced, while units,
//     their name=systemd and cgroup2 groups, and the watchdog work. /dev
//     is nspawn's minimal one (no loop devices, no /dev/kmsg). Units run
//     under nspawn's seccomp filter and capability bounding set: keyctl
//     fails with EPERM there (systemd's KeyringMode= copes, quietly).
//   - Commands that Exec runs enter all of the host's namespaces
//     (nsenter -a) with the environment of its PID 1 (container=
//     systemd-nspawn, PATH; HOME=/root), not nspawn's NOTIFY_SOCKET. They
//     are not in the host's cgroups, nor under nspawn's seccomp filter or
//     capability bounding set (they have the machine's root's powers):
//     what must run as the host's units do is started with systemctl or
//     systemd-run --wait --pipe.
//
// # Cost and concurrency
//
// The first Boot on a machine builds the root: about two minutes, with the
// network (once per version of the part of the script that makes it). After
// that, a Boot, a copy of the 220 MB root in /dev/shm and the boot to
// running, takes about one second (0.9 to 1.5 s on two shared cores; two at
// once 1.4 to 3.5 s each, 2 to 6 s on a busy machine), and the cleanup's
// poweroff two to four seconds. Each host has a unique name, root and cgroups
// (cairn-testhost-NAME beneath the test's), so tests booting hosts may run
// in parallel: the cache's lock is held shared while roots are copied and
// only a build holds it alone. Boot and the methods that fail the test
// (Run, WriteFile, ReadFile, CopyIn) belong to the test's goroutine, as
// t.Fatal does; Exec may be called from several goroutines at once.
//
// Without root, systemd-nspawn (systemd-container), nsenter or debootstrap,
// or when the root cannot be built, Boot skips the test, except in CI (CI
// set), where it fails: .ci/run installs what is needed.
package testhost
