package systemd

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listenNotify binds a unixgram socket, points NOTIFY_SOCKET at it, and
// returns it.
func listenNotify(t *testing.T) *net.UnixConn {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return conn
}

func TestNotify(t *testing.T) {
	conn := listenNotify(t)
	for _, tc := range []struct {
		name string
		send func() (bool, error)
		want string
	}{
		{"Ready", Ready, "READY=1"},
		{"Status", func() (bool, error) { return Status("applied generation 7\nno drift") }, "STATUS=applied generation 7 no drift"},
		{"Watchdog", Watchdog, "WATCHDOG=1"},
		{"Stopping", Stopping, "STOPPING=1"},
		{"Reloading", Reloading, "RELOADING=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent, err := tc.send()
			if err != nil || !sent {
				t.Fatalf("sent %v, err %v; want sent", sent, err)
			}
			buf := make([]byte, 4096)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(buf[:n]); got != tc.want {
				t.Errorf("the socket got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNotifyOutsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	if sent, err := Ready(); sent || err != nil {
		t.Errorf("Ready without NOTIFY_SOCKET: sent %v, err %v; want a silent no-op", sent, err)
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	if sent, err := Ready(); sent || err == nil {
		t.Errorf("Ready to a dead socket: sent %v, err %v; want an error", sent, err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"", "", 0, false},
		{"10000000", pid, 5 * time.Second, false},
		{"10000000", "", 5 * time.Second, false},
		{"10000000", "1", 0, false}, // another process's watchdog
		{"x", pid, 0, true},
	} {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		got, err := WatchdogInterval()
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, %v; want %v (error %v)", tc.usec, tc.pid, got, err, tc.want, tc.err)
		}
	}
}
