package fleet

import (
	"cmp"
	"strings"
)

// natural compares two names as people count them: runs of digits by
// their value (web-2 before web-10, 127.0.0.9 before 127.0.0.10), the rest
// byte by byte; names equal so (web-02 and web-2) fall back to bytes.
func natural(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if !isDigit(a[i]) || !isDigit(b[j]) {
			if a[i] != b[j] {
				return cmp.Compare(a[i], b[j])
			}
			i, j = i+1, j+1
			continue
		}
		si, sj := i, j
		for i < len(a) && isDigit(a[i]) {
			i++
		}
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		da, db := strings.TrimLeft(a[si:i], "0"), strings.TrimLeft(b[sj:j], "0")
		if c := cmp.Or(cmp.Compare(len(da), len(db)), strings.Compare(da, db)); c != 0 {
			return c
		}
	}
	return cmp.Or(cmp.Compare(len(a)-i, len(b)-j), strings.Compare(a, b))
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// byHost orders hosts by host name, then instance, each in natural order.
func byHost(hostA, instanceA, hostB, instanceB string) int {
	return cmp.Or(natural(hostA, hostB), natural(instanceA, instanceB))
}
