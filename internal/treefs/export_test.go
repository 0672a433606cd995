package treefs

// UserSpace makes d resolve paths in user space, as where openat2 is
// missing.
func UserSpace(d *Dir) { d.userspace.Store(true) }
