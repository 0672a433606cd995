package steps

import "sync"

var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}
