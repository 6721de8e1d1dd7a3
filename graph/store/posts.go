package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/dialect/sql"

	"github.com/authql/authql/cache"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/post"
	"github.com/authql/authql/ent/predicate"
	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/ent/user"
)

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
	// Authors says the posts' authors will be asked for: with the user
	// tier off (where they would otherwise come from), a page read from
	// the database then brings their profiles in the same statement (a
	// join), set as each post's Edges.Author. A page from the cache brings
	// none; the caller loads those as usual.
	Authors bool
	// Omit names the columns nothing will read (fields not selected): a
	// page read from the database leaves them out, unless the page tier
	// keeps it for other selections. A post's content may be 50,000
	// characters that a list of titles would read for nothing.
	Omit PostColumns
	// AuthorOmit does the same for the authors a page brings (Authors):
	// their profiles then lack those fields, so they serve this page's
	// author fields only, never another reader of the user.
	AuthorOmit ProfileColumns
}

// PostColumns is a set of post columns a page may leave out. The column
// a page is ordered by is read for its cursors, unless OmitCursors says
// nothing reads them (its edges' cursors then hold a zero time).
type PostColumns uint8

const (
	OmitContent PostColumns = 1 << iota
	OmitCreatedAt
	OmitUpdatedAt
	OmitCursors
)

// ProfileColumns is a set of a user's profile columns that the authors
// of a page may leave out; their id is always read.
type ProfileColumns uint8

const (
	OmitEmail ProfileColumns = 1 << iota
	OmitName
	OmitRole
	OmitEmailVerified
	OmitJoined // the account's created_at
	OmitProfileUpdatedAt
)

// profileOmits is the bit that leaves out each of profileColumns[1:].
var profileOmits = map[string]ProfileColumns{
	user.FieldEmail: OmitEmail, user.FieldName: OmitName, user.FieldRole: OmitRole,
	user.FieldEmailVerified: OmitEmailVerified, user.FieldCreatedAt: OmitJoined, user.FieldUpdatedAt: OmitProfileUpdatedAt,
}

// order is the page's sort order: newest first unless asked otherwise.
func (p PostPage) order() ent.PostOrder {
	if p.Order == nil || p.Order.Field == nil {
		return ent.PostOrder{Direction: entgql.OrderDirectionDesc, Field: ent.PostOrderFieldCreatedAt}
	}
	return *p.Order
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

// cacheKey names the page in the page tier, with its list if the total
// is asked for.
func (p PostPage) cacheKey() cache.PageKey {
	k := cache.PageKey{Page: p.hash()}
	if p.TotalCount {
		k.Count = p.list()
	}
	return k
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
	p := new(ent.Post)
	c.post(p)
	return p
}

// post sets p to the post c carries.
func (c PostRecord) post(p *ent.Post) {
	*p = ent.Post{ID: c.ID, Title: c.Title, Content: c.Content, AuthorID: c.AuthorID, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// postPage is one page as the page tier stores it: its posts and where it
// sits.
type postPage struct {
	Posts   []PostRecord `json:"p"`
	HasNext bool         `json:"n"`
	HasPrev bool         `json:"v"`

	authors map[pulid.ID]*ent.User // read with the page, never cached
}

// Posts returns one page of a post list, by keyset (never OFFSET): from the
// cache when this page of the current generation was read before, else
// from the database, and then cached. The total is counted only when asked
// for, and cached too, so large tables are not recounted on every request.
// hasPreviousPage (with first) and hasNextPage (with last) say only whether
// a cursor was given, as the Relay specification allows; the other is
// exact. Returns ErrBadCursor for a cursor of another kind of list.
func (s *Store) Posts(ctx context.Context, req PostPage) (*ent.PostConnection, error) {
	conns, errs := s.PostPages(ctx, []PostPage{req})
	if errs != nil {
		return nil, errs[0]
	}
	return conns[0], nil
}

// PostPages answers several page requests at once: one cache round trip
// for all, and first pages of several authors' lists (same size and
// order, no cursor) in one windowed query.
func (s *Store) PostPages(ctx context.Context, reqs []PostPage) ([]*ent.PostConnection, []error) {
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
	keys := make([]cache.PageKey, len(reqs))
	for i, r := range reqs {
		keys[i] = r.cacheKey()
	}
	read := cache.ReadPages[postPage](ctx, s.tiers, keys)
	var missPages, missCounts []int
	for i := range reqs {
		if read.Pages[i] == nil {
			missPages = append(missPages, i)
		}
		if reqs[i].TotalCount && read.Counts[i] == nil {
			missCounts = append(missCounts, i)
		}
	}
	newPages, err := s.queryPages(ctx, reqs, missPages)
	if err != nil {
		return nil, fill(len(reqs), err)
	}
	newCounts, err := s.queryCounts(ctx, reqs, missCounts)
	if err != nil {
		return nil, fill(len(reqs), err)
	}
	pages, counts := read.Pages, read.Counts
	toStore, countsToStore := make([]*postPage, len(reqs)), make([]*int, len(reqs))
	for i, p := range newPages {
		pages[i], toStore[i] = p, p
	}
	for i, n := range newCounts {
		counts[i], countsToStore[i] = n, n
	}
	cache.StorePages(ctx, s.tiers, read, keys, toStore, countsToStore)
	out := make([]*ent.PostConnection, len(reqs))
	for i, r := range reqs {
		out[i] = postConnection(r, pages[i], counts[i])
	}
	return out, nil
}

// postConnection builds the Relay connection of a page.
func postConnection(r PostPage, p *postPage, count *int) *ent.PostConnection {
	field := r.order().Field
	conn := &ent.PostConnection{}
	nodes := make([]ent.Post, 0, len(p.Posts)) // one allocation for the page's posts
	conn.Edges, conn.PageInfo = connection(page[PostRecord]{rows: p.Posts, hasNext: p.HasNext, hasPrev: p.HasPrev},
		func(rec PostRecord, e *ent.PostEdge) {
			v := rec.CreatedAt
			if field == ent.PostOrderFieldUpdatedAt {
				v = rec.UpdatedAt
			}
			nodes = append(nodes, ent.Post{})
			node := &nodes[len(nodes)-1]
			rec.post(node)
			node.Edges.Author = p.authors[rec.AuthorID]
			*e = ent.PostEdge{Node: node, Cursor: ent.Cursor{ID: rec.ID, Value: v}}
		},
		func(e *ent.PostEdge) *ent.Cursor { return &e.Cursor })
	if count != nil {
		conn.TotalCount = *count
	}
	return conn
}

// queryPages reads the pages at idx from the database: first pages of
// several authors in one windowed query, anything else one query each.
func (s *Store) queryPages(ctx context.Context, reqs []PostPage, idx []int) (map[int]*postPage, error) {
	out := map[int]*postPage{}
	groups := map[string][]int{} // first pages of author lists, by shape
	for _, i := range idx {
		r := reqs[i]
		if r.Author != "" && r.After == nil && r.Before == nil && r.Last == nil {
			o := r.order()
			shape := fmt.Sprintf("%s|%s|%d", o.Field.String(), o.Direction, r.size())
			groups[shape] = append(groups[shape], i)
			continue
		}
		p, err := s.queryPage(ctx, r)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	for _, g := range groups {
		if len(g) == 1 {
			p, err := s.queryPage(ctx, reqs[g[0]])
			if err != nil {
				return nil, err
			}
			out[g[0]] = p
			continue
		}
		pages, err := s.queryFirstPages(ctx, reqs, g)
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
func orderColumn(o ent.PostOrder) string {
	if o.Field == ent.PostOrderFieldUpdatedAt {
		return post.FieldUpdatedAt
	}
	return post.FieldCreatedAt
}

// beyond selects the posts after c in the direction dir: (col, id) past
// the cursor's.
func beyond(col string, dir entgql.OrderDirection, c *ent.Cursor) predicate.Post {
	v := c.Value.(time.Time)
	if dir == entgql.OrderDirectionDesc {
		return post.Or(predicate.Post(sql.FieldLT(col, v)), post.And(predicate.Post(sql.FieldEQ(col, v)), post.IDLT(c.ID)))
	}
	return post.Or(predicate.Post(sql.FieldGT(col, v)), post.And(predicate.Post(sql.FieldEQ(col, v)), post.IDGT(c.ID)))
}

// optionalColumn is a post column a page may leave out, and where it
// scans into a record.
type optionalColumn struct {
	omit  PostColumns
	field string
	dest  any
}

// optionalColumns is the post columns a page may leave out, scanned into
// rec, in the order a page statement selects them.
func optionalColumns(rec *PostRecord) [3]optionalColumn {
	return [3]optionalColumn{
		{OmitContent, post.FieldContent, &rec.Content},
		{OmitCreatedAt, post.FieldCreatedAt, scanTime{&rec.CreatedAt}},
		{OmitUpdatedAt, post.FieldUpdatedAt, scanTime{&rec.UpdatedAt}},
	}
}

// readColumn is a column a page statement selects beyond the post's id,
// title and author, and where it scans into.
type readColumn struct {
	field string
	dest  any
}

// read is what a page of shape sh selects beyond the post's id, title and
// author, in the statement's order, scanned into rec and author: the post
// columns it does not omit and, if the authors are joined, their profile
// columns it does not omit. The statement (buildPage) and the scan
// (queryPage) both take it, so the two agree.
func (sh pageShape) read(rec *PostRecord, author *cachedUser) (posts, profile []readColumn) {
	for _, c := range optionalColumns(rec) {
		if sh.omit&c.omit == 0 {
			posts = append(posts, readColumn{c.field, c.dest})
		}
	}
	if sh.authors {
		adest := author.dest()[1:] // the id is the post's author_id
		for i, f := range profileColumns[1:] {
			if sh.authorOmit&profileOmits[f] == 0 {
				profile = append(profile, readColumn{f, adest[i]})
			}
		}
	}
	return posts, profile
}

// columnOmit is the bit of PostColumns that leaves out each column a
// page may be ordered by.
var columnOmit = map[string]PostColumns{post.FieldCreatedAt: OmitCreatedAt, post.FieldUpdatedAt: OmitUpdatedAt}

// pageShape is everything a page statement's text depends on; its
// arguments are the page's author and cursors (pageArgs).
type pageShape struct {
	keyset
	col        string // ordered by
	dir        entgql.OrderDirection
	author     bool        // one author's list
	omit       PostColumns // the order column too, unless the cursors read it
	authors    bool        // joined
	authorOmit ProfileColumns
}

// maxPageStatements bounds the statements kept by shape. Real clients
// ask for a handful of shapes; past the bound (sizes 1 to 100 times
// every selection) a statement is built each time, as before.
const maxPageStatements = 256

// pageStatement returns the page's statement and its arguments. The text
// is ent's builder's, built at the first page of its shape and kept: the
// builder cost as much as a tenth of an uncached page. A kept text is
// used only if, when it was built, its arguments in the builder's order
// were pageArgs's.
func (s *Store) pageStatement(sh pageShape, r PostPage) (string, []any) {
	args := pageArgs(sh, r)
	if q, ok := s.pageStatements.Load(sh); ok {
		return q.(string), args
	}
	query, built := s.buildPage(sh, r)
	same := len(built) == len(args) && (len(args) == 0 || reflect.DeepEqual(built, args))
	if same && s.pageStatementCount.Add(1) <= maxPageStatements {
		s.pageStatements.Store(sh, query)
	}
	return query, built
}

// pageArgs is a page statement's arguments, in the order buildPage's
// predicates take them: the author, then each cursor's value twice and id.
func pageArgs(sh pageShape, r PostPage) []any {
	args := make([]any, 0, 7)
	if sh.author {
		args = append(args, r.Author)
	}
	for _, c := range []*ent.Cursor{r.After, r.Before} {
		if c != nil {
			v := c.Value.(time.Time)
			args = append(args, v, v, c.ID)
		}
	}
	return args
}

// buildPage writes a page's statement with ent's builder.
func (s *Store) buildPage(sh pageShape, r PostPage) (string, []any) {
	col := sh.col
	b := sql.Dialect(s.dialect)
	t := b.Table(post.Table)
	columns := []string{t.C(post.FieldID), t.C(post.FieldTitle), t.C(post.FieldAuthorID)}
	posts, profile := sh.read(&PostRecord{}, &cachedUser{})
	for _, c := range posts {
		columns = append(columns, selected(s.dialect, t.C(c.field), c.dest))
	}
	sel := b.Select(columns...).From(t)
	if sh.authors {
		a := b.Table(user.Table).As("a")
		sel.Join(a).On(t.C(post.FieldAuthorID), a.C(user.FieldID))
		for _, c := range profile {
			sel.AppendSelect(selected(s.dialect, a.C(c.field), c.dest))
		}
	}
	if sh.author {
		post.AuthorID(r.Author)(sel)
	}
	if sh.after {
		beyond(col, sh.dir, r.After)(sel)
	}
	if sh.before {
		beyond(col, sh.dir.Reverse(), r.Before)(sel)
	}
	read := sh.dir // the rows come in this order
	if sh.backward {
		read = read.Reverse()
	}
	dir := sql.OrderAsc()
	if read == entgql.OrderDirectionDesc {
		dir = sql.OrderDesc()
	}
	sql.OrderByField(col, dir).ToFunc()(sel)
	post.ByID(dir)(sel)
	return sel.Limit(sh.n + 1).Query()
}

// queryPage reads one page by keyset: n+1 rows past the cursor tell
// whether more follow. With r.Authors and no user tier, the statement
// joins each post's author and the page brings their profiles; without a
// page tier it leaves out the columns of r.Omit. The statement is ent's
// builder's, built once per shape (pageStatement); its rows are scanned
// straight into records (ent's generic scan costs as much as the query).
func (s *Store) queryPage(ctx context.Context, r PostPage) (*postPage, error) {
	o := r.order()
	k := keyset{n: r.size(), backward: r.Last != nil, after: r.After != nil, before: r.Before != nil}
	sh := pageShape{keyset: k, col: orderColumn(o), dir: o.Direction, author: r.Author != "",
		omit: r.Omit, authors: r.Authors && (s.users == nil || !s.users.Cached())}
	if s.tiers.PagesCached() {
		sh.omit = 0
	}
	if sh.omit&OmitCursors == 0 { // the cursors hold the order column
		sh.omit &^= columnOmit[sh.col]
	}
	if sh.authors {
		sh.authorOmit = r.AuthorOmit
	}
	var (
		recs     = make([]PostRecord, 0, k.n+1)
		authors  map[pulid.ID]*ent.User
		profiles []ent.User
		rec      PostRecord
		author   cachedUser
		dest     = []any{&rec.ID, &rec.Title, &rec.AuthorID}
	)
	posts, profile := sh.read(&rec, &author)
	for _, c := range append(posts, profile...) {
		dest = append(dest, c.dest)
	}
	if sh.authors {
		authors = make(map[pulid.ID]*ent.User, k.n+1)
		profiles = make([]ent.User, 0, k.n+1) // one allocation for the page's authors
	}
	query, args := s.pageStatement(sh, r)
	rows, err := s.client.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		recs = append(recs, rec)
		if _, ok := authors[rec.AuthorID]; sh.authors && !ok {
			author.ID = rec.AuthorID
			profiles = append(profiles, ent.User{}) // n+1 rows at most: within its capacity
			author.set(&profiles[len(profiles)-1])
			authors[rec.AuthorID] = &profiles[len(profiles)-1]
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	p := keysetPage(recs, k)
	return &postPage{Posts: p.rows, HasNext: p.hasNext, HasPrev: p.hasPrev, authors: authors}, nil
}

// queryFirstPages reads the first page of several authors' lists (same
// order and size) in one statement: ROW_NUMBER() per author, at most n+1
// rows each.
func (s *Store) queryFirstPages(ctx context.Context, reqs []PostPage, idx []int) (map[int]*postPage, error) {
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
	q := s.client.Post.Query()
	q.Modify(func(sel *sql.Selector) {
		b := sql.Dialect(sel.Dialect())
		tbl := b.Table(post.Table)
		win := sql.RowNumber().PartitionBy(tbl.C(post.FieldAuthorID)).
			OrderBy(tbl.C(col)+" "+dir, tbl.C(post.FieldID)+" "+dir)
		inner := b.Select(tbl.Columns(post.Columns...)...).
			AppendSelectExprAs(win, "rn").
			From(tbl).
			Where(sql.In(tbl.C(post.FieldAuthorID), authors...))
		sel.From(inner.As(post.Table)).Where(sql.LTE(sel.C("rn"), n+1)).OrderBy(sel.C(post.FieldAuthorID), sel.C("rn"))
	})
	posts, err := q.All(ctx)
	if err != nil {
		return nil, err
	}
	byAuthor := map[pulid.ID][]*ent.Post{}
	for _, p := range posts {
		byAuthor[p.AuthorID] = append(byAuthor[p.AuthorID], p)
	}
	out := make(map[int]*postPage, len(idx))
	for _, i := range idx {
		ps := byAuthor[reqs[i].Author]
		more := len(ps) > n
		out[i] = &postPage{Posts: postRecords(ps[:min(n, len(ps))]), HasNext: more}
	}
	return out, nil
}

// queryCounts counts the lists at idx: all posts with one COUNT, authors'
// lists with one grouped COUNT.
func (s *Store) queryCounts(ctx context.Context, reqs []PostPage, idx []int) (map[int]*int, error) {
	out := map[int]*int{}
	var authors []pulid.ID
	for _, i := range idx {
		if reqs[i].Author == "" {
			n, err := s.client.Post.Query().Count(ctx)
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
	err := s.client.Post.Query().Where(post.AuthorIDIn(authors...)).
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

func postRecords(ps []*ent.Post) []PostRecord {
	out := make([]PostRecord, len(ps))
	for i, p := range ps {
		out[i] = NewPostRecord(p)
	}
	return out
}
