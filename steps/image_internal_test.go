package steps

import (
	"reflect"
	"testing"
	"time"
)

// TestImageMtime checks which modification times an image keeps: every
// time RFC 3339 can write, and none outside the years 0 to 9999.
func TestImageMtime(t *testing.T) {
	for _, c := range []struct {
		sec  int64
		keep bool
	}{
		{0, true},
		{1_700_000_000, true},
		{-62_000_000_000, true},  // year 35
		{253_402_300_799, true},  // 9999-12-31T23:59:59Z
		{253_402_300_800, false}, // year 10000
		{400_000_000_000, false}, // year 14645
		{-62_200_000_000, false}, // year -1
	} {
		got := imageMtime(c.sec, 0)
		if got.IsZero() == c.keep {
			t.Errorf("imageMtime(%d): %v, kept %v, want kept %v", c.sec, got, !got.IsZero(), c.keep)
		}
		if c.keep && got.Unix() != c.sec {
			t.Errorf("imageMtime(%d): %v, want that second", c.sec, got)
		}
	}
}

// TestAbsentOnly checks that an image says only that its object is absent
// when every field but Absent and Place is zero: an image with any other
// field set (each field of Image in turn, so that a field added later is
// covered) is not, and keepUndo does not share it.
func TestAbsentOnly(t *testing.T) {
	place := &Place{Dir: "/dst", Dev: 1, Ino: 2}
	if img := (Image{Absent: true, Place: place}); !img.absentOnly() {
		t.Fatalf("%+v: not absentOnly", img)
	}
	if img := (Image{}); img.absentOnly() {
		t.Fatalf("the zero image is absentOnly")
	}
	typ := reflect.TypeFor[Image]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Name == "Absent" || f.Name == "Place" {
			continue
		}
		img := Image{Absent: true, Place: place}
		v := reflect.ValueOf(&img).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString("x")
		case reflect.Int, reflect.Int64:
			v.SetInt(1)
		case reflect.Uint32:
			v.SetUint(1)
		case reflect.Map:
			v.Set(reflect.MakeMap(f.Type)) // empty, not nil: the image records no attributes
		case reflect.Slice:
			v.Set(reflect.MakeSlice(f.Type, 0, 0))
		case reflect.Struct: // time.Time
			v.Set(reflect.ValueOf(time.Unix(1, 0)))
		default:
			t.Fatalf("field %s of kind %s: the test does not know how to set it", f.Name, v.Kind())
		}
		if img.absentOnly() {
			t.Errorf("an absent image with %s set is absentOnly", f.Name)
		}
	}
}

// TestKeepUndo checks which undo images a batch shares: consecutive
// images of absent objects from one Place (a cold apply's new files in one
// directory) are one, an image that says more or lies elsewhere is its
// own, and equal Places are shared.
func TestKeepUndo(t *testing.T) {
	var b batch
	at := func(dir string) *Place { return &Place{Dir: dir, Dev: 1, Ino: 2} }
	first := b.keepUndo(Image{Absent: true, Place: at("/dst")})
	if again := b.keepUndo(Image{Absent: true, Place: at("/dst")}); again != first {
		t.Errorf("two absent objects in /dst: two images")
	}
	file := b.keepUndo(Image{Type: TypeFile, Mode: 0o644, Blob: "ab", Place: at("/dst")})
	if file == first || file.Place != first.Place {
		t.Errorf("a file in /dst after an absent object there: shares the image %v, the Place %v; want its own image, the Place shared", file == first, file.Place == first.Place)
	}
	next := b.keepUndo(Image{Absent: true, Place: at("/dst")})
	if next == first || next == file {
		t.Errorf("an absent object after a file: shares an image not the last one kept")
	}
	other := b.keepUndo(Image{Absent: true, Place: at("/srv")})
	if other == next || other.Place == next.Place {
		t.Errorf("absent objects in /dst and /srv share an image or a Place")
	}
	if !other.absentOnly() || *other.Place != *at("/srv") {
		t.Errorf("kept %+v, want the image given", *other)
	}
}
