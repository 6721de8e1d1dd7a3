package store

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/authql/authql/ent/schema/pulid"
)

// A page of posts is stored in the page tier in a compact binary form of
// its own: decoding a page of 100 posts from JSON (reflection, and two
// RFC 3339 times a post) took a quarter of the CPU of a feed served from
// the page tier. The form:
//
//	version byte (pageCodecVersion), flags byte (1 hasNext, 2 hasPrev),
//	uvarint number of posts, then per post: id, title, content, author id
//	(each a uvarint length and the bytes), created and updated at (each
//	varint Unix nanoseconds and varint zone offset in seconds).
//
// Anything else (another version's entry, JSON) fails to decode and is a
// miss.

const pageCodecVersion = 1

var errPageCodec = errors.New("not a page of this version")

// MarshalBinary implements encoding.BinaryMarshaler for the page tier.
func (p *postPage) MarshalBinary() ([]byte, error) {
	n := 16
	for _, r := range p.Posts {
		n += len(r.ID) + len(r.Title) + len(r.Content) + len(r.AuthorID) + 4*binary.MaxVarintLen64
	}
	b := make([]byte, 0, n)
	var flags byte
	if p.HasNext {
		flags |= 1
	}
	if p.HasPrev {
		flags |= 2
	}
	b = append(b, pageCodecVersion, flags)
	b = binary.AppendUvarint(b, uint64(len(p.Posts)))
	for _, r := range p.Posts {
		for _, s := range []string{string(r.ID), r.Title, r.Content, string(r.AuthorID)} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
		for _, t := range []time.Time{r.CreatedAt, r.UpdatedAt} {
			_, off := t.Zone()
			b = binary.AppendVarint(b, t.UnixNano())
			b = binary.AppendVarint(b, int64(off))
		}
	}
	return b, nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler for the page tier.
// The page's strings share one copy of b.
func (p *postPage) UnmarshalBinary(b []byte) error {
	if len(b) < 2 || b[0] != pageCodecVersion || b[1]&^3 != 0 {
		return errPageCodec
	}
	d := decoder{s: string(b[2:])}
	*p = postPage{HasNext: b[1]&1 != 0, HasPrev: b[1]&2 != 0}
	n := d.uvarint()
	if n > MaxPageSize+1 {
		return errPageCodec
	}
	p.Posts = make([]PostRecord, 0, n)
	for range n {
		r := PostRecord{ID: pulid.ID(d.str()), Title: d.str(), Content: d.str(), AuthorID: pulid.ID(d.str())}
		r.CreatedAt, r.UpdatedAt = d.time(), d.time()
		p.Posts = append(p.Posts, r)
	}
	if d.bad || d.s != "" {
		return errPageCodec
	}
	return nil
}

// decoder reads what MarshalBinary wrote; bad is set at the first thing
// that does not fit.
type decoder struct {
	s   string
	bad bool
}

func (d *decoder) uvarint() uint64 {
	var v uint64
	for i := 0; i < len(d.s) && i < binary.MaxVarintLen64; i++ {
		c := d.s[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			d.s = d.s[i+1:]
			return v
		}
	}
	d.bad, d.s = true, ""
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.s)) {
		d.bad, d.s = true, ""
		return ""
	}
	s := d.s[:n]
	d.s = d.s[n:]
	return s
}

func (d *decoder) time() time.Time {
	ns, off := d.varint(), d.varint()
	if off < -18*3600 || off > 18*3600 {
		d.bad = true
	}
	t := time.Unix(0, ns)
	if off == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(off)))
}
