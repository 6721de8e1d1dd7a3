package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/authql/authql/ent/schema/pulid"
)

func testPage() *postPage {
	t0 := time.Date(2026, 11, 29, 19, 12, 55, 891725000, time.UTC)
	p := &postPage{HasNext: true}
	for i := range 3 {
		p.Posts = append(p.Posts, PostRecord{ID: pulid.ID("PO01J" + string(rune('A'+i))), Title: "tïtle\x00 " + string(rune('a'+i)),
			Content: "<p>body</p>", AuthorID: "US01JX", CreatedAt: t0.Add(time.Duration(i) * time.Second),
			UpdatedAt: t0.Add(time.Hour).In(time.FixedZone("", 3600))})
	}
	return p
}

// A page reads back as it was written: posts, flags, instants and offsets.
func TestPageCodecRoundTrip(t *testing.T) {
	for _, want := range []*postPage{testPage(), {HasPrev: true}, {Posts: []PostRecord{}}} {
		b, err := want.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got postPage
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("%+v: %v", want, err)
		}
		if got.HasNext != want.HasNext || got.HasPrev != want.HasPrev || len(got.Posts) != len(want.Posts) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		for i, r := range got.Posts {
			w := want.Posts[i]
			_, offG := r.UpdatedAt.Zone()
			_, offW := w.UpdatedAt.Zone()
			if r.ID != w.ID || r.Title != w.Title || r.Content != w.Content || r.AuthorID != w.AuthorID ||
				!r.CreatedAt.Equal(w.CreatedAt) || !r.UpdatedAt.Equal(w.UpdatedAt) || offG != offW ||
				r.CreatedAt.Location() != time.UTC {
				t.Fatalf("post %d: got %+v, want %+v", i, r, w)
			}
		}
	}
}

// Anything but a whole page of this version fails to decode, so the page
// tier counts it a miss: another version's JSON, a cut entry, garbage.
func TestPageCodecRefusesOtherForms(t *testing.T) {
	good, _ := testPage().MarshalBinary()
	js, _ := json.Marshal(testPage())
	bad := [][]byte{nil, {}, js, good[:len(good)-1], append(append([]byte{}, good...), 0), {pageCodecVersion, 4, 0},
		{pageCodecVersion, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, {pageCodecVersion + 1, 0, 0}}
	for _, b := range bad {
		var p postPage
		if err := p.UnmarshalBinary(b); err == nil {
			t.Errorf("%q decoded as %+v", b, p)
		}
	}
	// Every cut of a good entry fails rather than panics.
	for i := range good {
		var p postPage
		if err := p.UnmarshalBinary(good[:i]); err == nil {
			t.Errorf("a page cut at %d of %d decoded", i, len(good))
		}
	}
}

func FuzzPageCodec(f *testing.F) {
	good, _ := testPage().MarshalBinary()
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		var p postPage
		if p.UnmarshalBinary(b) != nil {
			return
		}
		again, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var q postPage
		if err := q.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-encoded page does not decode: %v", err)
		}
	})
}
