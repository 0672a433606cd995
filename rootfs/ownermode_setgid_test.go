package rootfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSetOwnerModeNewFileInSetgidDir holds SetOwnerMode on a file made
// without a name (O_TMPFILE, as createFile makes one) in a set-group-ID
// directory, with and without a default ACL, to the owner and mode asked
// for, set-id bits included, as the chown and chmod it made always gave.
func TestSetOwnerModeNewFileInSetgidDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, acl := range []bool{false, true} {
		for _, tc := range []struct {
			uid, gid int
			mode     uint32
		}{
			{0, 0, 0o644},
			{0, 4321, 0o644},  // the directory's group: no chown
			{0, 4321, 0o2755}, // and set-gid
			{0, 4321, 0o4750}, // set-uid
			{1234, 4321, 0o6755},
			{-1, -1, 0o2640},
			{0, 4321, 0o640},
		} {
			dir := filepath.Join(t.TempDir(), "sgid")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, 0, 4321); err != nil {
				t.Fatal(err)
			}
			if err := unix.Chmod(dir, 0o2775); err != nil {
				t.Fatal(err)
			}
			if acl {
				if out, err := exec.Command("setfacl", "-d", "-m", "u::rwx,g::r-x,o::---,u:99:rwx", dir).CombinedOutput(); err != nil {
					t.Skipf("setfacl: %v %s", err, out)
				}
			}
			r := openRoot(t, filepath.Dir(dir), false)
			d, err := r.OpenDir("/sgid")
			if err != nil {
				t.Fatal(err)
			}
			f, err := d.CreateUnnamed("f", tc.mode&0o777)
			if err != nil {
				d.Close()
				t.Skipf("O_TMPFILE: %v", err)
			}
			f.Write([]byte("x"))
			if err := SetOwnerMode(f, tc.uid, tc.gid, tc.mode); err != nil {
				t.Fatal(err)
			}
			var st unix.Stat_t
			if err := unix.Fstat(int(f.Fd()), &st); err != nil {
				t.Fatal(err)
			}
			wantUID, wantGID := uint32(tc.uid), uint32(tc.gid)
			if tc.uid < 0 {
				wantUID = 0
			}
			if tc.gid < 0 {
				wantGID = 4321
			}
			if st.Uid != wantUID || st.Gid != wantGID || st.Mode&0o7777 != tc.mode {
				t.Errorf("acl %v, %+v: %d:%d %04o, want %d:%d %04o", acl, tc, st.Uid, st.Gid, st.Mode&0o7777, wantUID, wantGID, tc.mode)
			}
			f.Close()
			d.Close()
		}
	}
}
