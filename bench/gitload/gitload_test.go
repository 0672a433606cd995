package main

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

// TestPollIsOneAdvertisement checks, from the servers' own logs, what the
// agent's fetch asks of a git server: with nothing new, one git daemon
// connection or one GET of info/refs per poll and no pack; with a new
// commit on the control branch, one pack request per host.
func TestPollIsOneAdvertisement(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	work := t.TempDir()
	u, _, err := newUpstream(work, 400, 3)
	if err != nil {
		t.Fatal(err)
	}
	daemon, err := startDaemon(ctx, work, u.base, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(daemon.stop)
	servers := []*server{daemon}
	_, errNginx := exec.LookPath("nginx")
	_, errFcgi := exec.LookPath("fcgiwrap")
	if errNginx == nil && errFcgi == nil {
		plain, cached, _, err := startNginx(ctx, work, u.base, nil, 2, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(plain.stop)
		servers = append(servers, plain, cached)
	} else {
		t.Log("nginx or fcgiwrap not installed (Debian packages nginx-light, fcgiwrap): git daemon only")
	}
	hosts := newHosts(work, 3)
	boot, err := run(ctx, daemon, hosts, len(hosts), 2, 0, 30*time.Second, "bootstrap")
	if err != nil || boot.errs > 0 {
		t.Fatalf("bootstrap: %v, %d errors, the first: %v", err, boot.errs, boot.firstErr)
	}
	// With the cache, the polls after a push wait out its validity.
	waits := map[*server]time.Duration{}
	if len(servers) == 3 {
		waits[servers[2]] = 2*time.Second + 100*time.Millisecond
	}
	for _, s := range servers {
		if _, err := run(ctx, s, hosts, len(hosts), 2, 0, 30*time.Second, "re-point"); err != nil {
			t.Fatal(err)
		}
		const polls = 12
		p, err := run(ctx, s, hosts, polls, 2, 0, 30*time.Second, "nothing new")
		if err != nil || p.errs > 0 {
			t.Fatalf("%s: %v, %d errors, the first: %v", s.name, err, p.errs, p.firstErr)
		}
		ask, pack := "connections", ""
		if s != daemon {
			ask, pack = "GET info/refs", "POST upload-pack"
		}
		if p.reqs[ask] != polls || (pack != "" && p.reqs[pack] != 0) {
			t.Errorf("%s: %d polls with nothing new made %v; want %d %q and no %q", s.name, polls, p.reqs, polls, ask, pack)
		}
		if err := u.push(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(waits[s])
		p, err = run(ctx, s, hosts, len(hosts), 2, 0, 30*time.Second, "a new commit")
		if err != nil || p.errs > 0 {
			t.Fatalf("%s: %v, %d errors, the first: %v", s.name, err, p.errs, p.firstErr)
		}
		if s == daemon {
			if p.reqs[ask] != len(hosts) {
				t.Errorf("%s: %d hosts fetching a new commit made %v; want one connection each", s.name, len(hosts), p.reqs)
			}
		} else if p.reqs[ask] != len(hosts) || p.reqs[pack] != len(hosts) {
			t.Errorf("%s: %d hosts fetching a new commit made %v; want one GET and one POST each", s.name, len(hosts), p.reqs)
		}
	}
}
