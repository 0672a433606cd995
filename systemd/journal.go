package systemd

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

// StderrIsJournal reports whether the process's stderr is a stream to
// systemd's journal: systemd set JOURNAL_STREAM (device:inode) for a
// service whose output goes there, and fd 2 is still that stream, as
// sd_journal's own check has it. Then the log is better sent natively
// ([JournalHandler]), a field per attribute.
func StderrIsJournal() bool {
	ok, err := journal.StderrIsJournalStream()
	return ok && err == nil
}

// fieldPrefix starts the journal field of every attribute a
// [JournalHandler] sends: the attribute commit is the field CAIRN_COMMIT.
// It keeps cairn's fields apart from the journal's own (MESSAGE,
// PRIORITY, ERRNO, CODE_FILE, ...), whatever the attribute's name.
const fieldPrefix = "CAIRN_"

// maxFieldName is the longest field name journald accepts.
const maxFieldName = 64

// JournalHandler is a slog.Handler that sends each record to systemd's
// journal over its native protocol (go-systemd's journal.Send, a datagram
// to /run/systemd/journal/socket): MESSAGE is the record's message,
// PRIORITY its level (error 3 from slog.LevelError up, warning 4 from
// slog.LevelWarn, info 6 from slog.LevelInfo, debug 7 below),
// SYSLOG_IDENTIFIER the identifier it was made with, and every attribute
// a field of its own: CAIRN_ and the attribute's key upper-cased, each
// character but A-Z and 0-9 an underscore, cut at the 64 characters
// journald allows (commit is CAIRN_COMMIT, last-run CAIRN_LAST_RUN; in a
// group run, CAIRN_RUN_COMMIT). A later attribute of the same name wins.
// journald stamps the time, the PID and the unit itself; the record's time
// is not sent.
//
// journald finds a native entry's unit (_SYSTEMD_UNIT) from the sender's
// PID, which it cannot once the process has exited: the last records of
// an agent that exits at once (the error of a failed start) would be
// missing from journalctl -u cairn and systemctl status. So each entry
// also names the unit the process runs in, read from /proc/self/cgroup as
// sd_pid_get_unit(3) does, in OBJECT_SYSTEMD_UNIT, which journalctl -u
// shows when root sent it.
//
// A record the journal refuses (no socket, as outside systemd with
// --log-format journal; a large entry whose temporary file in /dev/shm
// cannot be made) goes to the fallback handler instead, if there is one,
// so that it is not lost: under systemd, stderr is a stream to the journal
// too, where the record lands as one line of text.
type JournalHandler struct {
	ident    string
	fallback slog.Handler                                            // where records the journal refuses go; nil drops them
	send     func(string, journal.Priority, map[string]string) error // journal.Send
	unit     string                                                  // the unit the process runs in, for OBJECT_SYSTEMD_UNIT
	level    slog.Leveler
	prefix   string            // the groups opened by WithGroup, as a field name prefix
	fields   map[string]string // the attributes given by WithAttrs
}

var _ slog.Handler = (*JournalHandler)(nil)

// NewJournalHandler returns a handler that sends records to the journal,
// with SYSLOG_IDENTIFIER=ident, from opts.Level up (info when nil), and
// the records the journal refuses to fallback (nil: they are dropped).
func NewJournalHandler(ident string, opts *slog.HandlerOptions, fallback slog.Handler) *JournalHandler {
	h := &JournalHandler{ident: ident, fallback: fallback, send: journal.Send, unit: ownUnit(), level: slog.LevelInfo, prefix: fieldPrefix}
	if opts != nil && opts.Level != nil {
		h.level = opts.Level
	}
	return h
}

// Enabled reports whether level is at or above the handler's level.
func (h *JournalHandler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

// Handle sends the record to the journal, or, if the journal refuses it
// (no socket, a journald that is not running), hands it to the fallback
// handler. The error is the journal's when there is no fallback, else the
// fallback's.
func (h *JournalHandler) Handle(ctx context.Context, r slog.Record) error {
	msg, pri, fields := h.entry(r)
	err := h.send(msg, pri, fields)
	if err == nil {
		return nil
	}
	if h.fallback != nil {
		return h.fallback.Handle(ctx, r)
	}
	return fmt.Errorf("journal: %w", err)
}

// entry is what Handle sends for r: the message, the priority and the
// fields besides MESSAGE and PRIORITY.
func (h *JournalHandler) entry(r slog.Record) (string, journal.Priority, map[string]string) {
	fields := make(map[string]string, len(h.fields)+r.NumAttrs()+1)
	maps.Copy(fields, h.fields)
	if h.ident != "" {
		fields["SYSLOG_IDENTIFIER"] = h.ident
	}
	if h.unit != "" {
		fields["OBJECT_SYSTEMD_UNIT"] = h.unit
	}
	r.Attrs(func(a slog.Attr) bool {
		addField(fields, h.prefix, a)
		return true
	})
	return r.Message, priority(r.Level), fields
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *JournalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.fields = make(map[string]string, len(h.fields)+len(attrs))
	maps.Copy(c.fields, h.fields)
	for _, a := range attrs {
		addField(c.fields, h.prefix, a)
	}
	if h.fallback != nil {
		c.fallback = h.fallback.WithAttrs(attrs)
	}
	return &c
}

// WithGroup returns a handler whose attributes are in the group name: the
// attribute commit becomes the field CAIRN_NAME_COMMIT.
func (h *JournalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix = h.prefix + fieldPart(name) + "_"
	if h.fallback != nil {
		c.fallback = h.fallback.WithGroup(name)
	}
	return &c
}

// priority is the journal's priority of a slog level.
func priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	}
	return journal.PriDebug
}

// fieldName is the journal field of the attribute key in the groups
// whose names make prefix.
func fieldName(prefix, key string) string {
	name := prefix + fieldPart(key)
	if len(name) > maxFieldName {
		name = name[:maxFieldName]
	}
	return name
}

// fieldPart is key in the characters of a journal field name.
func fieldPart(key string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return '_'
	}, key)
}

// addField adds the attribute a, in the groups of prefix, to fields: a
// group's attributes each as a field of their own.
func addField(fields map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += fieldPart(a.Key) + "_"
		}
		for _, g := range v.Group() {
			addField(fields, p, g)
		}
		return
	}
	if a.Key == "" {
		return
	}
	fields[fieldName(prefix, a.Key)] = fieldValue(v)
}

// fieldValue is the text of a resolved value: times in RFC 3339 with
// nanoseconds, durations as Go writes them (1m30s), errors their message.
func fieldValue(v slog.Value) string {
	switch v.Kind() {
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	case slog.KindDuration:
		return v.Duration().String()
	}
	return v.String()
}

// ownUnit returns the systemd unit the process runs in, or "" when it
// runs in none.
func ownUnit() string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	return cgroupUnit(string(b))
}

// cgroupUnit returns the unit of a /proc/PID/cgroup: the first component
// of systemd's cgroup path (name=systemd's on a legacy or hybrid host,
// else the cgroup2 one, 0::PATH) that is not a slice, if it is a unit's
// name (cairn.service in /system.slice/cairn.service).
func cgroupUnit(cgroup string) string {
	var path, v2 string
	for line := range strings.Lines(cgroup) {
		_, rest, _ := strings.Cut(strings.TrimSuffix(line, "\n"), ":")
		switch ctrl, p, _ := strings.Cut(rest, ":"); ctrl {
		case "name=systemd":
			path = p
		case "":
			v2 = p
		}
	}
	if path == "" {
		path = v2
	}
	for c := range strings.SplitSeq(path, "/") {
		if c == "" || strings.HasSuffix(c, ".slice") {
			continue
		}
		for _, t := range unitTypes {
			if strings.HasSuffix(c, t) && len(c) > len(t) {
				return c
			}
		}
		return ""
	}
	return ""
}
