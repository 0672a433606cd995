package steps

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"
	"unicode/utf8"
)

// Object types of a path image.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
)

// Image is the state of one managed object at one moment: enough to bring it
// back. For the path family it is the type, mode, owner and content (a blob)
// or link target, and for files and directories their extended attributes
// (for files also the mtime); other families keep their own record in Data.
type Image struct {
	Absent bool   `json:"absent,omitempty"`
	Type   string `json:"type,omitempty"`
	Mode   uint32 `json:"mode,omitempty"`
	UID    int    `json:"uid,omitempty"`
	GID    int    `json:"gid,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Blob   string `json:"blob,omitempty"`
	Target string `json:"target,omitempty"`
	// Mtime is a file's modification time, to the nanosecond; zero in an
	// image from before cairn kept it (the restored file has the time of
	// its writing).
	Mtime time.Time `json:"mtime,omitzero"`
	// Xattrs are the extended attributes of a file or directory, value by
	// name (user., trusted. and security. ones, security.capability
	// included, and the POSIX ACLs system.posix_acl_access and
	// system.posix_acl_default). Empty, not nil, when it has none; nil in an
	// image from before cairn kept them, whose restore leaves the
	// attributes as they are.
	Xattrs map[string][]byte `json:"xattrs,omitzero"`
	// Data is a family's own record (a user's passwd entry, a package's
	// version, a unit's enablement).
	Data json.RawMessage `json:"data,omitempty"`
	// Place is where a path op's object lives, in an undo image only (the
	// intent log): an original image has none.
	Place *Place `json:"place,omitempty"`
}

// absentOnly reports whether img says only that its object is absent (and
// where, its Place): every other field is zero.
func (img *Image) absentOnly() bool {
	return img.Absent && img.Type == "" && img.Mode == 0 && img.UID == 0 && img.GID == 0 && img.Size == 0 &&
		img.Blob == "" && img.Target == "" && img.Mtime.IsZero() && img.Xattrs == nil && img.Data == nil
}

// invalidText returns the first string in v (a record of strings, through
// pointers, structs, slices and maps) that is no valid UTF-8, and whether
// there is one. cairn's state is JSON, whose encoder writes U+FFFD in place
// of such bytes: an image holding one would be restored as something else.
func invalidText(v reflect.Value) (string, bool) {
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		return s, !utf8.ValidString(s)
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return invalidText(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				if s, bad := invalidText(v.Field(i)); bad {
					return s, true
				}
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "", false // bytes: base64 in JSON, kept exactly
		}
		for i := range v.Len() {
			if s, bad := invalidText(v.Index(i)); bad {
				return s, true
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if s, bad := invalidText(it.Key()); bad {
				return s, true
			}
			if s, bad := invalidText(it.Value()); bad {
				return s, true
			}
		}
	}
	return "", false
}

// recordData is json.Marshal of a family's record for Image.Data, refused
// when a string of it is no valid UTF-8 (invalidText): what names the
// object in the error.
func recordData(what string, rec any) (json.RawMessage, error) {
	if s, bad := invalidText(reflect.ValueOf(rec)); bad {
		return nil, fmt.Errorf("refusing to act: %s holds %q, no valid UTF-8, which cairn's state cannot keep to restore it", what, s)
	}
	return json.Marshal(rec)
}
