package systemd

import (
	_ "embed" // the agent's unit file
	"strings"
)

//go:embed cairn.service
var unitFile string

// UnitName is the name of the agent's unit.
const UnitName = "cairn.service"

// UnitFile returns the agent's unit file, cairn.service, to be installed as
// /lib/systemd/system/cairn.service; its comments explain each option.
func UnitFile() []byte { return []byte(unitFile) }

// UnitFileFor returns the agent's unit file with ExecStart running the
// binary at exe instead of /usr/bin/cairn.
func UnitFileFor(exe string) []byte {
	return []byte(strings.Replace(unitFile, "ExecStart=/usr/bin/cairn ", "ExecStart="+exe+" ", 1))
}
