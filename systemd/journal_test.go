package systemd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

// TestJournalEntry checks what a JournalHandler sends for a record: the
// fields of its attributes, groups and WithAttrs, and its priority. That
// journald takes them is tested in a real systemd (host_test.go).
func TestJournalEntry(t *testing.T) {
	at := time.Date(2026, 12, 3, 16, 30, 0, 5, time.UTC)
	base := NewJournalHandler("cairn", &slog.HandlerOptions{Level: slog.LevelDebug}, nil)
	base.unit = "cairn.service"
	for _, tc := range []struct {
		name    string
		handler slog.Handler
		level   slog.Level
		attrs   []slog.Attr
		pri     journal.Priority
		want    map[string]string
	}{
		{
			name: "kinds", handler: base, level: slog.LevelInfo, pri: journal.PriInfo,
			attrs: []slog.Attr{
				slog.String("commit", "0123abcd"), slog.Int("ops", 3), slog.Bool("held", false),
				slog.Duration("interval", 90*time.Second), slog.Time("since", at),
				slog.Any("err", errors.New("boom\nsecond line")), slog.String("last-run.result", "applied"),
				slog.String("", "dropped"),
			},
			want: map[string]string{
				"CAIRN_COMMIT": "0123abcd", "CAIRN_OPS": "3", "CAIRN_HELD": "false",
				"CAIRN_INTERVAL": "1m30s", "CAIRN_SINCE": "2026-12-03T16:30:00.000000005Z",
				"CAIRN_ERR": "boom\nsecond line", "CAIRN_LAST_RUN_RESULT": "applied",
			},
		},
		{
			name: "groups", handler: base.WithAttrs([]slog.Attr{slog.String("host", "web-01")}).WithGroup("run"),
			level: slog.LevelWarn, pri: journal.PriWarning,
			attrs: []slog.Attr{
				slog.String("commit", "c2"), slog.Group("plan", slog.Int("steps", 4)),
				slog.Group("", slog.String("inline", "x")), slog.Group("empty"),
			},
			want: map[string]string{"CAIRN_HOST": "web-01", "CAIRN_RUN_COMMIT": "c2", "CAIRN_RUN_PLAN_STEPS": "4", "CAIRN_RUN_INLINE": "x"},
		},
		{
			name: "a later attribute wins, long names are cut", handler: base, level: slog.LevelError, pri: journal.PriErr,
			attrs: []slog.Attr{slog.String("state", "fetching"), slog.String("state", "applying"), slog.String(strings.Repeat("k", 80), "v")},
			want:  map[string]string{"CAIRN_STATE": "applying", "CAIRN_" + strings.Repeat("K", 58): "v"},
		},
		{name: "debug", handler: base, level: slog.LevelDebug, pri: journal.PriDebug, want: map[string]string{}},
		{name: "between info and warn", handler: base, level: slog.LevelInfo + 2, pri: journal.PriInfo, want: map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := slog.NewRecord(at, tc.level, "the message", 0)
			r.AddAttrs(tc.attrs...)
			msg, pri, fields := tc.handler.(*JournalHandler).entry(r)
			if msg != "the message" || pri != tc.pri {
				t.Errorf("message %q, priority %d; want %q, %d", msg, pri, "the message", tc.pri)
			}
			want := maps.Clone(tc.want)
			want["SYSLOG_IDENTIFIER"] = "cairn"
			want["OBJECT_SYSTEMD_UNIT"] = "cairn.service"
			if !maps.Equal(fields, want) {
				t.Errorf("fields\n%v\nwant\n%v", fields, want)
			}
			for k := range fields {
				if len(k) > 64 || strings.Trim(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" || k[0] == '_' {
					t.Errorf("field %q is no journal field name", k)
				}
			}
		})
	}
}

func TestCgroupUnit(t *testing.T) {
	for _, tc := range []struct{ cgroup, want string }{
		{"0::/system.slice/cairn.service\n", "cairn.service"},
		{"0::/system.slice/cairn.service/sub\n", "cairn.service"},
		{"12:cpu,cpuacct:/\n1:name=systemd:/system.slice/cairn.service\n0::/system.slice/cairn.service\n", "cairn.service"},
		{"1:name=systemd:/system.slice/nginx.service\n0::/\n", "nginx.service"},
		{"0::/user.slice/user-0.slice/session-3.scope\n", "session-3.scope"},
		{"0::/init.scope\n", "init.scope"},
		{"0::/\n", ""},
		{"0::/system.slice\n", ""},
		{"0::/machine/cairn-testhost-x\n", ""},
		{"", ""},
	} {
		if got := cgroupUnit(tc.cgroup); got != tc.want {
			t.Errorf("cgroupUnit(%q) = %q, want %q", tc.cgroup, got, tc.want)
		}
	}
}

func TestJournalLevel(t *testing.T) {
	h := NewJournalHandler("cairn", nil, nil)
	if h.Enabled(context.Background(), slog.LevelDebug) || !h.Enabled(context.Background(), slog.LevelInfo) {
		t.Error("the default level is not info")
	}
	h = NewJournalHandler("cairn", &slog.HandlerOptions{Level: slog.LevelWarn}, nil)
	if h.Enabled(context.Background(), slog.LevelInfo) || !h.Enabled(context.Background(), slog.LevelError) {
		t.Error("the level of the options is not kept")
	}
}

// TestStderrIsJournal checks that JOURNAL_STREAM must name stderr itself:
// a variable inherited by a process whose stderr went elsewhere (a shell
// started from a service) is no journal.
func TestStderrIsJournal(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "")
	if StderrIsJournal() {
		t.Error("StderrIsJournal without JOURNAL_STREAM")
	}
	t.Setenv("JOURNAL_STREAM", "1:2")
	if StderrIsJournal() {
		t.Error("StderrIsJournal with a JOURNAL_STREAM that is not stderr")
	}
	t.Setenv("JOURNAL_STREAM", "garbage")
	if StderrIsJournal() {
		t.Error("StderrIsJournal with a malformed JOURNAL_STREAM")
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(2, &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	if !StderrIsJournal() {
		t.Error("not StderrIsJournal with JOURNAL_STREAM naming stderr")
	}
}

// TestJournalFallback checks that a record the journal refuses (here: no
// socket, as with --log-format journal outside systemd) goes to the
// fallback handler, with the attributes and groups of WithAttrs and
// WithGroup, instead of being lost.
func TestJournalFallback(t *testing.T) {
	var buf strings.Builder
	h := NewJournalHandler("cairn", nil, slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	h.send = func(string, journal.Priority, map[string]string) error {
		return &os.PathError{Op: "sendmsg", Path: "/run/systemd/journal/socket", Err: syscall.ENOENT}
	}
	log := slog.New(h).With("host", "web-01").WithGroup("run")
	log.Error("cairn exits", "code", 2)
	if got, want := buf.String(), "level=ERROR msg=\"cairn exits\" host=web-01 run.code=2\n"; got != want {
		t.Errorf("fallback got %q, want %q", got, want)
	}

	h = NewJournalHandler("cairn", nil, nil)
	h.send = func(string, journal.Priority, map[string]string) error { return syscall.ENOENT }
	if err := h.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, "m", 0)); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("without a fallback, Handle returned %v, want the journal's error", err)
	}
}
