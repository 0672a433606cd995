package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// maxInitBytes is the most that the initialisation of one of cairn's
// packages may allocate. Every run of the binary pays for every package's
// init, whatever its command: state that only some commands use (templates,
// regular expressions, checksum tables) is made at its first use instead.
const maxInitBytes = 4 << 10

// TestInitsAllocateLittle runs this test binary, which links what cairn
// does, with GODEBUG=inittrace=1 and checks what each of cairn's packages
// allocates in its init (a count that does not vary from run to run).
func TestInitsAllocateLittle(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd, err, stderr.Bytes())
	}
	seen := 0
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		pkg, allocated, ok := initBytes(sc.Text())
		if !ok || !strings.HasPrefix(pkg, "github.com/cairn-cm/cairn/") {
			continue
		}
		seen++
		if allocated > maxInitBytes {
			t.Errorf("the init of %s allocates %d bytes, more than %d", pkg, allocated, maxInitBytes)
		}
	}
	if seen == 0 {
		t.Fatalf("no init of cairn's packages in the trace:\n%s", stderr.Bytes())
	}
}

// initBytes reads a line of GODEBUG=inittrace=1, "init PKG @0.5 ms, 0.01
// ms clock, 312 bytes, 7 allocs": the package and the bytes its init
// allocated.
func initBytes(line string) (pkg string, n int, ok bool) {
	f := strings.Fields(line)
	if len(f) != 11 || f[0] != "init" || f[8] != "bytes," {
		return "", 0, false
	}
	n, err := strconv.Atoi(f[7])
	if err != nil {
		return "", 0, false
	}
	return f[1], n, true
}
