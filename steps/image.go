package steps

import "encoding/json"

// Object types of a path image.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
)

// Image is the state of one managed object at one moment: enough to bring it
// back. For the path family it is the type, mode, owner and content (a blob)
// or link target; other families keep their own record in Data.
type Image struct {
	Absent bool   `json:"absent,omitempty"`
	Type   string `json:"type,omitempty"`
	Mode   uint32 `json:"mode,omitempty"`
	UID    int    `json:"uid,omitempty"`
	GID    int    `json:"gid,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Blob   string `json:"blob,omitempty"`
	Target string `json:"target,omitempty"`
	// Data is a family's own record (a user's passwd entry, a package's
	// version, a unit's enablement).
	Data json.RawMessage `json:"data,omitempty"`
	// Place is where a path op's object lives, in an undo image only (the
	// intent log): an original image has none.
	Place *Place `json:"place,omitempty"`
}
