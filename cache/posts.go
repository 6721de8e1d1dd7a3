package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/dialect/sql"
	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/post"
	"github.com/authql/authql/ent/predicate"
	"github.com/authql/authql/ent/schema/pulid"
)

// DefaultPageSize is the page size when neither first nor last is given.
const DefaultPageSize = 20

// ErrBadCursor is returned for a cursor that is not one of a post list's.
var ErrBadCursor = errors.New("not a cursor of this list")

// PostPage asks for one page of a post list.
type PostPage struct {
	// Author restricts the list to one author's posts; "" lists every post.
	Author        pulid.ID
	First, Last   *int
	After, Before *ent.Cursor
	// Order is the sort order; nil means newest first.
	Order *ent.PostOrder
	// TotalCount asks for the size of the whole list too.
	TotalCount bool
}

// NewestFirst is the default order of post lists.
var NewestFirst = &ent.PostOrder{Direction: entgql.OrderDirectionDesc, Field: ent.PostOrderFieldCreatedAt}

func (p PostPage) order() *ent.PostOrder {
	if p.Order == nil || p.Order.Field == nil {
		return NewestFirst
	}
	return p.Order
}

func (p PostPage) size() int {
	switch {
	case p.First != nil:
		return *p.First
	case p.Last != nil:
		return *p.Last
	}
	return DefaultPageSize
}

// list names the list for counts.
func (p PostPage) list() string {
	if p.Author == "" {
		return "all"
	}
	return "author:" + string(p.Author)
}

// hash identifies the page (list, order, size, cursors) in a cache key.
func (p PostPage) hash() string {
	o := p.order()
	h := sha256.New()
	fmt.Fprintf(h, "%s|%s|%s|%d|%v", p.list(), o.Field.String(), o.Direction, p.size(), p.Last != nil)
	for _, c := range []*ent.Cursor{p.After, p.Before} {
		if c == nil {
			h.Write([]byte("|-"))
			continue
		}
		fmt.Fprintf(h, "|%s@%v", c.ID, c.Value)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// PostRecord is the compact wire form of a post: how the page tier stores
// it in Redis and how post events carry it between instances.
type PostRecord struct {
	ID        pulid.ID  `json:"id"`
	Title     string    `json:"t"`
	Content   string    `json:"c"`
	AuthorID  pulid.ID  `json:"a"`
	CreatedAt time.Time `json:"ca"`
	UpdatedAt time.Time `json:"ua"`
}

// NewPostRecord is the wire form of p.
func NewPostRecord(p *ent.Post) PostRecord {
	return PostRecord{ID: p.ID, Title: p.Title, Content: p.Content, AuthorID: p.AuthorID, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

// Post is the post c carries.
func (c PostRecord) Post() *ent.Post {
	return &ent.Post{ID: c.ID, Title: c.Title, Content: c.Content, AuthorID: c.AuthorID, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// cachedPage is one page as stored: its posts and where it sits.
type cachedPage struct {
	Posts   []PostRecord `json:"p"`
	HasNext bool         `json:"n"`
	HasPrev bool         `json:"v"`
}

// readPages reads the posts generation and, under it, pages and counts, in
// one round trip.
//
//	KEYS[1] posts generation   ARGV[1], ARGV[2] seed and TTL (genArgs)
//	ARGV[3] page key prefix   ARGV[4] count key prefix
//	ARGV[5..] pairs of (page hash, count list or '')
//
// Returns {generation, page1, count1, page2, count2, ...}, missing ones false.
var readPages = redis.NewScript(genLua + `
local g = gen(KEYS[1])
local out = {g}
for i = 5, #ARGV, 2 do
  table.insert(out, redis.call('GET', ARGV[3] .. g .. ':' .. ARGV[i]) or false)
  if ARGV[i+1] ~= '' then
    table.insert(out, redis.call('GET', ARGV[4] .. g .. ':' .. ARGV[i+1]) or false)
  else
    table.insert(out, false)
  end
end
return out
`)

// pageLookup is one page's entry in a cache read.
type pageLookup struct {
	page  *cachedPage
	count *int
}

// lookup reads pages from the cache. On any Redis failure it reports
// misses, and the database answers.
func (t *Tiers) lookup(ctx context.Context, reqs []PostPage) (gen int64, found []pageLookup, ok bool) {
	found = make([]pageLookup, len(reqs))
	if t.cfg.PageTTL <= 0 {
		return 0, found, false
	}
	args := append(t.genArgs(), t.k.pagePrefix(), t.k.countPrefix())
	for _, r := range reqs {
		list := ""
		if r.TotalCount {
			list = r.list()
		}
		args = append(args, r.hash(), list)
	}
	res, err := readPages.Run(ctx, t.rdb, []string{t.k.postsGen()}, args...).Slice()
	if err != nil {
		t.log.WarnContext(ctx, "post cache unavailable; reading the database", slog.Any("error", err))
		t.observePages(reqs, found)
		return 0, found, false
	}
	gen = parseGen(fmt.Sprint(res[0]))
	for i := range reqs {
		if s, ok := res[1+2*i].(string); ok {
			var p cachedPage
			if json.Unmarshal([]byte(s), &p) == nil {
				found[i].page = &p
			}
		}
		if s, ok := res[2+2*i].(string); ok {
			if n, err := strconv.Atoi(s); err == nil {
				found[i].count = &n
			}
		}
	}
	t.observePages(reqs, found)
	return gen, found, true
}

// observePages reports the hits and misses of a page lookup.
func (t *Tiers) observePages(reqs []PostPage, found []pageLookup) {
	for i, r := range reqs {
		t.obs.Access(TierPage, found[i].page != nil)
		if r.TotalCount {
			t.obs.Access(TierCount, found[i].count != nil)
		}
	}
}

// store writes pages and counts built from the database under the
// generation read before the database was.
func (t *Tiers) store(ctx context.Context, gen int64, reqs []PostPage, pages []*cachedPage, counts []*int) {
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range reqs {
			if pages[i] != nil {
				b, _ := json.Marshal(pages[i])
				p.Set(ctx, t.k.page(gen, r.hash()), b, t.cfg.PageTTL)
			}
			if counts[i] != nil {
				p.Set(ctx, t.k.count(gen, r.list()), *counts[i], t.cfg.PageTTL)
			}
		}
		return nil
	})
	if err != nil {
		t.log.WarnContext(ctx, "write post cache", slog.Any("error", err))
	}
}

// Posts returns one page of a post list, by keyset (never OFFSET): from the
// cache when this page of the current generation was read before, else
// from the database, and then cached. The total is counted only when asked
// for, and cached too, so large tables are not recounted on every request.
// hasPreviousPage (with first) and hasNextPage (with last) say only whether
// a cursor was given, as the Relay specification allows; the other is
// exact. Returns ErrBadCursor for a cursor of another kind of list.
func (t *Tiers) Posts(ctx context.Context, req PostPage) (*ent.PostConnection, error) {
	conns, errs := t.PostPages(ctx, []PostPage{req})
	if errs != nil {
		return nil, errs[0]
	}
	return conns[0], nil
}

// PostPages answers several page requests at once: one cache round trip
// for all, and first pages of several authors' lists (same size and
// order, no cursor) in one windowed query.
func (t *Tiers) PostPages(ctx context.Context, reqs []PostPage) ([]*ent.PostConnection, []error) {
	for _, r := range reqs {
		for _, c := range []*ent.Cursor{r.After, r.Before} {
			if c == nil {
				continue
			}
			if _, ok := c.Value.(time.Time); !ok || !c.ID.Valid() {
				return nil, fill(len(reqs), ErrBadCursor)
			}
		}
	}
	gen, found, cached := t.lookup(ctx, reqs)
	pages := make([]*cachedPage, len(reqs))
	counts := make([]*int, len(reqs))
	var missPages, missCounts []int
	for i, f := range found {
		pages[i] = f.page
		if pages[i] == nil {
			missPages = append(missPages, i)
		}
		if reqs[i].TotalCount {
			counts[i] = f.count
			if counts[i] == nil {
				missCounts = append(missCounts, i)
			}
		}
	}
	newPages, err := t.queryPages(ctx, reqs, missPages)
	if err != nil {
		return nil, fill(len(reqs), err)
	}
	newCounts, err := t.queryCounts(ctx, reqs, missCounts)
	if err != nil {
		return nil, fill(len(reqs), err)
	}
	for i, p := range newPages {
		pages[i] = p
	}
	for i, n := range newCounts {
		counts[i] = n
	}
	if cached && (len(newPages) > 0 || len(newCounts) > 0) {
		toStore := make([]*cachedPage, len(reqs))
		countsToStore := make([]*int, len(reqs))
		for i := range newPages {
			toStore[i] = pages[i]
		}
		for i := range newCounts {
			countsToStore[i] = counts[i]
		}
		t.store(ctx, gen, reqs, toStore, countsToStore)
	}
	out := make([]*ent.PostConnection, len(reqs))
	for i, r := range reqs {
		out[i] = connection(r, pages[i], counts[i])
	}
	return out, nil
}

func fill(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// connection builds the Relay connection of a page.
func connection(r PostPage, p *cachedPage, count *int) *ent.PostConnection {
	conn := &ent.PostConnection{Edges: make([]*ent.PostEdge, len(p.Posts))}
	field := r.order().Field
	for i, cp := range p.Posts {
		v := cp.CreatedAt
		if field == ent.PostOrderFieldUpdatedAt {
			v = cp.UpdatedAt
		}
		conn.Edges[i] = &ent.PostEdge{Node: cp.Post(), Cursor: ent.Cursor{ID: cp.ID, Value: v}}
	}
	conn.PageInfo.HasNextPage, conn.PageInfo.HasPreviousPage = p.HasNext, p.HasPrev
	if n := len(conn.Edges); n > 0 {
		conn.PageInfo.StartCursor = &conn.Edges[0].Cursor
		conn.PageInfo.EndCursor = &conn.Edges[n-1].Cursor
	}
	if count != nil {
		conn.TotalCount = *count
	}
	return conn
}

// queryPages reads the pages at idx from the database: first pages of
// several authors in one windowed query, anything else one query each.
func (t *Tiers) queryPages(ctx context.Context, reqs []PostPage, idx []int) (map[int]*cachedPage, error) {
	out := map[int]*cachedPage{}
	groups := map[string][]int{} // first pages of author lists, by shape
	for _, i := range idx {
		r := reqs[i]
		if r.Author != "" && r.After == nil && r.Before == nil && r.Last == nil {
			o := r.order()
			shape := fmt.Sprintf("%s|%s|%d", o.Field.String(), o.Direction, r.size())
			groups[shape] = append(groups[shape], i)
			continue
		}
		p, err := t.queryPage(ctx, r)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	for _, g := range groups {
		if len(g) == 1 {
			p, err := t.queryPage(ctx, reqs[g[0]])
			if err != nil {
				return nil, err
			}
			out[g[0]] = p
			continue
		}
		pages, err := t.queryFirstPages(ctx, reqs, g)
		if err != nil {
			return nil, err
		}
		for i, p := range pages {
			out[i] = p
		}
	}
	return out, nil
}

// orderColumn is the column a PostOrder sorts by.
func orderColumn(o *ent.PostOrder) string {
	if o.Field == ent.PostOrderFieldUpdatedAt {
		return post.FieldUpdatedAt
	}
	return post.FieldCreatedAt
}

// beyond selects the posts after c in an order: (col, id) past the
// cursor's, in the order's direction.
func beyond(col string, desc bool, c *ent.Cursor) predicate.Post {
	v := c.Value.(time.Time)
	if desc {
		return post.Or(predicate.Post(sql.FieldLT(col, v)), post.And(predicate.Post(sql.FieldEQ(col, v)), post.IDLT(c.ID)))
	}
	return post.Or(predicate.Post(sql.FieldGT(col, v)), post.And(predicate.Post(sql.FieldEQ(col, v)), post.IDGT(c.ID)))
}

// queryPage reads one page by keyset: n+1 rows past the cursor tell
// whether more follow.
func (t *Tiers) queryPage(ctx context.Context, r PostPage) (*cachedPage, error) {
	o := r.order()
	col := orderColumn(o)
	desc := o.Direction == entgql.OrderDirectionDesc
	backward := r.Last != nil
	q := t.client.Post.Query()
	if r.Author != "" {
		q.Where(post.AuthorID(r.Author))
	}
	if r.After != nil {
		q.Where(beyond(col, desc, r.After))
	}
	if r.Before != nil {
		q.Where(beyond(col, !desc, r.Before))
	}
	dir := sql.OrderAsc()
	if desc != backward {
		dir = sql.OrderDesc()
	}
	n := r.size()
	posts, err := q.Order(sql.OrderByField(col, dir).ToFunc(), post.ByID(dir)).Limit(n + 1).All(ctx)
	if err != nil {
		return nil, err
	}
	p := &cachedPage{}
	posts, p.HasNext, p.HasPrev = keysetPage(posts, n, backward, r.After != nil, r.Before != nil)
	p.Posts = toCachedPosts(posts)
	return p, nil
}

// keysetPage turns the n+1 rows a keyset query read into a page, in list
// order (a backward read comes in reverse), and says whether rows lie past
// either end: the extra row tells in the direction read; the other side
// has rows if a cursor was given there, as the Relay specification allows.
func keysetPage[T any](rows []T, n int, backward, after, before bool) (page []T, hasNext, hasPrev bool) {
	more := len(rows) > n
	rows = rows[:min(n, len(rows))]
	if backward {
		slices.Reverse(rows)
		return rows, before, more
	}
	return rows, more, after
}

// queryFirstPages reads the first page of several authors' lists (same
// order and size) in one statement: ROW_NUMBER() per author, at most n+1
// rows each.
func (t *Tiers) queryFirstPages(ctx context.Context, reqs []PostPage, idx []int) (map[int]*cachedPage, error) {
	r0 := reqs[idx[0]]
	o := r0.order()
	col := orderColumn(o)
	dir := "ASC"
	if o.Direction == entgql.OrderDirectionDesc {
		dir = "DESC"
	}
	n := r0.size()
	authors := make([]any, len(idx))
	for j, i := range idx {
		authors[j] = reqs[i].Author
	}
	q := t.client.Post.Query()
	q.Modify(func(s *sql.Selector) {
		b := sql.Dialect(s.Dialect())
		tbl := b.Table(post.Table)
		win := sql.RowNumber().PartitionBy(tbl.C(post.FieldAuthorID)).
			OrderBy(tbl.C(col)+" "+dir, tbl.C(post.FieldID)+" "+dir)
		inner := b.Select(tbl.Columns(post.Columns...)...).
			AppendSelectExprAs(win, "rn").
			From(tbl).
			Where(sql.In(tbl.C(post.FieldAuthorID), authors...))
		s.From(inner.As(post.Table)).Where(sql.LTE(s.C("rn"), n+1)).OrderBy(s.C(post.FieldAuthorID), s.C("rn"))
	})
	posts, err := q.All(ctx)
	if err != nil {
		return nil, err
	}
	byAuthor := map[pulid.ID][]*ent.Post{}
	for _, p := range posts {
		byAuthor[p.AuthorID] = append(byAuthor[p.AuthorID], p)
	}
	out := make(map[int]*cachedPage, len(idx))
	for _, i := range idx {
		ps := byAuthor[reqs[i].Author]
		more := len(ps) > n
		out[i] = &cachedPage{Posts: toCachedPosts(ps[:min(n, len(ps))]), HasNext: more}
	}
	return out, nil
}

// queryCounts counts the lists at idx: all posts with one COUNT, authors'
// lists with one grouped COUNT.
func (t *Tiers) queryCounts(ctx context.Context, reqs []PostPage, idx []int) (map[int]*int, error) {
	out := map[int]*int{}
	var authors []pulid.ID
	for _, i := range idx {
		if reqs[i].Author == "" {
			n, err := t.client.Post.Query().Count(ctx)
			if err != nil {
				return nil, err
			}
			out[i] = &n
			continue
		}
		authors = append(authors, reqs[i].Author)
	}
	if len(authors) == 0 {
		return out, nil
	}
	var rows []struct {
		AuthorID pulid.ID `json:"author_id"`
		Count    int      `json:"count"`
	}
	err := t.client.Post.Query().Where(post.AuthorIDIn(authors...)).
		GroupBy(post.FieldAuthorID).Aggregate(ent.Count()).Scan(ctx, &rows)
	if err != nil {
		return nil, err
	}
	counts := map[pulid.ID]int{}
	for _, row := range rows {
		counts[row.AuthorID] = row.Count
	}
	for _, i := range idx {
		if reqs[i].Author != "" {
			n := counts[reqs[i].Author]
			out[i] = &n
		}
	}
	return out, nil
}

func toCachedPosts(ps []*ent.Post) []PostRecord {
	out := make([]PostRecord, len(ps))
	for i, p := range ps {
		out[i] = NewPostRecord(p)
	}
	return out
}
