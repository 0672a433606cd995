package blobstore

import (
	"hash/crc32"
	"sync"
)

// bufPool holds the 64 KiB buffers of copies and small Puts.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// crcTable is CRC-32C, the checksum of index records. It is made at its
// first use: the table's making (the tables of the SSE 4.2 code besides)
// would otherwise cost every run of cairn, which mostly opens no store.
var crcTable = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// ValidSum reports whether sum is a sha256 as the store names blobs: 64
// lower-case hex digits.
func ValidSum(sum string) bool {
	_, ok := parseSum(sum)
	return ok
}
