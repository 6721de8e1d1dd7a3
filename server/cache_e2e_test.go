package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/entdb/entdbtest"
	"github.com/authql/authql/ent/schema/pulid"
)

// costOf returns a response's extensions.cost entry.
func costOf(t *testing.T, r gqlResponse, name string) float64 {
	t.Helper()
	cost, ok := r.Extensions["cost"].(map[string]any)
	if !ok {
		t.Fatalf("no extensions.cost in %v", r.Extensions)
	}
	n, _ := cost[name].(float64)
	return n
}

// seed writes users, each with posts, straight into the database (the
// reads under test do not care how rows got there).
func seed(t testing.TB, client *ent.Client, users, postsEach int) []pulid.ID {
	t.Helper()
	ids, err := entdbtest.Seed(t.Context(), client, users, users*postsEach)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// The feed query costs the database a constant number of statements,
// however many posts and authors it returns: 2 cold, 0 warm, and no Redis
// round trip for authentication.
func TestFeedIsNotNPlusOne(t *testing.T) {
	t.Parallel()
	const feed = `{ posts(first: 100) { edges { node { title author { name } } } } }`
	for _, tc := range []struct {
		name      string
		responses string // APP_CACHE_RESPONSE_TTL
	}{
		{"user and page tiers only", "0"},
		{"with the response tier", "1m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			e.env["APP_CACHE_RESPONSE_TTL"] = tc.responses
			s := e.start(t)
			seed(t, s.app.db.Client, 100, 1)
			tok := s.register(t, "reader@example.com", "plum-tree-42", "Reader")
			waitSynced(t, s)
			cold := s.do(t, tok.Access, feed, nil).mustOK(t)
			if n := len(cold.get("posts.edges").([]any)); n != 100 {
				t.Fatalf("%d edges, want 100", n)
			}
			authors := map[string]bool{}
			for _, e := range cold.get("posts.edges").([]any) {
				authors[e.(map[string]any)["node"].(map[string]any)["author"].(map[string]any)["name"].(string)] = true
			}
			if len(authors) != 100 {
				t.Fatalf("%d distinct authors, want 100", len(authors))
			}
			if got := costOf(t, cold, "sqlStatements"); got > 2 {
				t.Errorf("cold: %v SQL statements, want at most 2", got)
			}
			warm := s.do(t, tok.Access, feed, nil).mustOK(t)
			if got := costOf(t, warm, "sqlStatements"); got != 0 {
				t.Errorf("warm: %v SQL statements, want 0", got)
			}
			for name, r := range map[string]gqlResponse{"cold": cold, "warm": warm} {
				if got := costOf(t, r, "authRedisRoundTrips"); got != 0 {
					t.Errorf("%s: %v Redis round trips for authentication, want 0", name, got)
				}
			}
			t.Logf("cold: %v SQL, %v Redis; warm: %v SQL, %v Redis",
				costOf(t, cold, "sqlStatements"), costOf(t, cold, "redisRoundTrips"),
				costOf(t, warm, "sqlStatements"), costOf(t, warm, "redisRoundTrips"))
		})
	}
}

// Nested lists batch too: every author's first page of posts, with totals,
// costs the same number of statements for 5 authors as for 50.
func TestUserPostsBatched(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t).uncached() // measure the queries themselves
	e.env["APP_COMPLEXITY_LIMIT"] = "5000"
	s := e.start(t)
	seed(t, s.app.db.Client, 50, 4)
	admin := s.register(t, "admin@example.com", "plum-tree-42", "Admin")
	promote(t, e, "admin@example.com")
	const q = `query($n: Int) { users(first: $n) { edges { node { name posts(first: 3) { totalCount edges { node { title } } pageInfo { hasNextPage } } } } } }`
	costs := map[int]float64{}
	for _, n := range []int{5, 50} {
		r := s.do(t, admin.Access, q, map[string]any{"n": n}).mustOK(t)
		edges := r.get("users.edges").([]any)
		for _, e := range edges {
			u := e.(map[string]any)["node"].(map[string]any)
			if u["name"] == "Admin" {
				continue
			}
			ps := u["posts"].(map[string]any)
			if got := len(ps["edges"].([]any)); got != 3 {
				t.Fatalf("%v: %d posts, want 3", u["name"], got)
			}
			if ps["totalCount"] != float64(4) || ps["pageInfo"].(map[string]any)["hasNextPage"] != true {
				t.Fatalf("%v: totalCount=%v pageInfo=%v", u["name"], ps["totalCount"], ps["pageInfo"])
			}
		}
		costs[n] = costOf(t, r, "sqlStatements")
	}
	if costs[5] != costs[50] {
		t.Errorf("SQL statements: %v for 5 authors, %v for 50: want the same", costs[5], costs[50])
	}
	t.Logf("SQL statements: %v", costs)
}

// Elements of a list run one after another while nothing they load is
// missing, but a field no list resolver prefetched (each user's role) still
// costs a few statements, not one per element: once an element waits for a
// loader, the rest run concurrently and batch.
func TestListElementsWaitingOnALoaderBatch(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_CACHE_RESPONSE_TTL"] = "0"
	e.env["APP_CACHE_USER_TTL"] = "0"
	s := e.start(t)
	seed(t, s.app.db.Client, 50, 0)
	admin := s.register(t, "admin@example.com", "plum-tree-42", "Admin")
	promote(t, e, "admin@example.com")
	const q = `query($n: Int) { users(first: $n) { edges { node { name role } } } }`
	costs := map[int]float64{}
	for _, n := range []int{5, 50} {
		r := s.do(t, admin.Access, q, map[string]any{"n": n}).mustOK(t)
		edges := r.get("users.edges").([]any)
		if len(edges) != n {
			t.Fatalf("%d users, want %d", len(edges), n)
		}
		for _, e := range edges {
			if u := e.(map[string]any)["node"].(map[string]any); u["role"] != "USER" && u["role"] != "ADMIN" {
				t.Fatalf("user %v has role %v", u["name"], u["role"])
			}
		}
		costs[n] = costOf(t, r, "sqlStatements")
	}
	// The loaders' batch window is short (100 µs): on a loaded machine the
	// goroutines of one batch may straddle two windows, so allow a few, far
	// from one per user.
	if costs[50] > 15 {
		t.Errorf("SQL statements: %v for 5 users, %v for 50: want no statement per user", costs[5], costs[50])
	}
	t.Logf("SQL statements: %v", costs)
}

// With every tier off, a page and its authors are one statement (a join),
// forwards and backwards, and each post shows its own author.
func TestUncachedPageReadsAuthorsInOneStatement(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t).uncached()
	s := e.start(t)
	seed(t, s.app.db.Client, 10, 3)
	tok := s.register(t, "reader@example.com", "plum-tree-42", "Reader")
	authorOf := map[string]string{} // post id → its author's name, from the database
	for _, p := range s.app.db.Client.Post.Query().WithAuthor().AllX(t.Context()) {
		authorOf[string(p.ID)] = p.Edges.Author.Name
	}
	check := func(r gqlResponse, want int) []any {
		t.Helper()
		edges := r.get("posts.edges").([]any)
		if len(edges) != want {
			t.Fatalf("%d posts, want %d", len(edges), want)
		}
		for _, e := range edges {
			n := e.(map[string]any)["node"].(map[string]any)
			a := n["author"].(map[string]any)
			if a["name"] != authorOf[n["id"].(string)] {
				t.Fatalf("post %v: author %v, want %v", n["id"], a["name"], authorOf[n["id"].(string)])
			}
		}
		if got := costOf(t, r, "sqlStatements"); got != 1 {
			t.Errorf("%v SQL statements, want 1", got)
		}
		return edges
	}
	const q = `query($first: Int, $last: Int, $before: Cursor) { posts(first: $first, last: $last, before: $before) {
		edges { cursor node { id author { id name } } } } }`
	edges := check(s.do(t, tok.Access, q, map[string]any{"first": 20}).mustOK(t), 20)
	before := edges[10].(map[string]any)["cursor"]
	check(s.do(t, tok.Access, q, map[string]any{"last": 5, "before": before}).mustOK(t), 5)
}

// Without caches a page's authors bring only the profile columns their
// fields read. Whatever the selection (fragments, aliases, a field needing
// none), each answer is the database's, and a user asked for elsewhere in
// the same request comes whole, not as a page's partial author.
func TestUncachedPageAuthorsAnswerEverySelection(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t).uncached()
	s := e.start(t)
	seed(t, s.app.db.Client, 3, 2)
	tok := s.register(t, "reader@example.com", "plum-tree-42", "Reader")
	s.do(t, tok.Access, `mutation { createPost(input: {title: "mine", content: "c"}) { id } }`, nil).mustOK(t)
	stored := map[string]map[string]any{} // user id → field → its JSON value
	for _, u := range s.app.db.Client.User.Query().AllX(t.Context()) {
		var email any // visible to its owner only
		if string(u.ID) == tok.UserID {
			email = u.Email
		}
		stored[string(u.ID)] = map[string]any{"id": string(u.ID), "name": u.Name, "email": email,
			"emailVerified": u.EmailVerified, "createdAt": u.CreatedAt.UTC().Format(time.RFC3339Nano), "role": string(u.Role)}
	}
	check := func(q string, u map[string]any) int {
		t.Helper()
		want := stored[u["id"].(string)]
		for f, v := range u {
			if f == "createdAt" {
				at, err := time.Parse(time.RFC3339Nano, v.(string))
				if err != nil {
					t.Fatalf("%s: createdAt %v: %v", q, v, err)
				}
				v = at.UTC().Format(time.RFC3339Nano)
			}
			if v != want[f] {
				t.Errorf("%s: user %v: %s is %v, want %v", q, u["id"], f, v, want[f])
			}
		}
		return len(u)
	}
	const all = `name email emailVerified createdAt role`
	for _, q := range []string{
		`{ posts(first: 20) { edges { node { author { id ` + all + ` } } } } }`,
		`{ posts(first: 20) { edges { node { author { id name } } } } }`,
		`{ posts(first: 20) { edges { node { author { id role } } } } }`,
		`{ posts(first: 20) { edges { node { author { id ... on Node { ... on User { ` + all + ` } } } } } } }`,
		`fragment A on User { ` + all + ` } { posts(first: 20) { edges { node { author { id ...A } } } } }`,
		`{ posts(first: 20) { edges { node { a: author { id name } b: author { id email createdAt } } } } }`,
		`{ posts(first: 20) { edges { node { author { id name } } } } user(id: "` + tok.UserID + `") { id ` + all + ` } }`,
	} {
		r := s.do(t, tok.Access, q, nil).mustOK(t)
		edges := r.get("posts.edges").([]any)
		if len(edges) != 7 {
			t.Fatalf("%s: %d posts, want 7", q, len(edges))
		}
		fields := 0
		for _, e := range edges {
			for _, a := range e.(map[string]any)["node"].(map[string]any) {
				fields += check(q, a.(map[string]any))
			}
		}
		if fields == 0 {
			t.Fatalf("%s: no author fields answered", q)
		}
		if u, ok := r.get("user").(map[string]any); ok {
			if check(q, u) != 6 {
				t.Errorf("%s: user is %v", q, u)
			}
		}
	}
}

// A page read without caches reads only the columns its fields need, and
// what it answers is the database's however the fields are selected:
// directly, in fragments (on Node too), or not at all while a cursor
// still needs the column the page is ordered by.
func TestUncachedPageAnswersEverySelection(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t).uncached()
	s := e.start(t)
	seed(t, s.app.db.Client, 3, 3)
	tok := s.register(t, "reader@example.com", "plum-tree-42", "Reader")
	type post struct{ content, createdAt, updatedAt string }
	stored := map[string]post{}
	for _, p := range s.app.db.Client.Post.Query().AllX(t.Context()) {
		stored[string(p.ID)] = post{p.Content, p.CreatedAt.UTC().Format(time.RFC3339Nano), p.UpdatedAt.UTC().Format(time.RFC3339Nano)}
	}
	for _, q := range []string{
		`{ posts(first: 9) { edges { node { id content createdAt updatedAt } } } }`,
		`{ posts(first: 9) { edges { node { id ... on Node { ... on Post { content createdAt updatedAt } } } } } }`,
		`fragment P on Post { content createdAt updatedAt } { posts(first: 9) { edges { node { id ...P } } } }`,
		`{ posts(first: 9) { edges { node { id ... @include(if: true) { content createdAt updatedAt } } } } }`,
	} {
		edges := s.do(t, tok.Access, q, nil).mustOK(t).get("posts.edges").([]any)
		if len(edges) != len(stored) {
			t.Fatalf("%s: %d posts, want %d", q, len(edges), len(stored))
		}
		for _, e := range edges {
			n := e.(map[string]any)["node"].(map[string]any)
			want := stored[n["id"].(string)]
			ca, _ := time.Parse(time.RFC3339Nano, n["createdAt"].(string))
			ua, _ := time.Parse(time.RFC3339Nano, n["updatedAt"].(string))
			got := post{n["content"].(string), ca.UTC().Format(time.RFC3339Nano), ua.UTC().Format(time.RFC3339Nano)}
			if got != want {
				t.Errorf("%s: post %v is %+v, want %+v", q, n["id"], got, want)
			}
		}
	}
	// Paging without selecting the column the page is ordered by: the
	// cursors hold it, however they are selected (pageInfo, the edges'
	// own, in a fragment). A page whose cursors nothing reads leaves the
	// column out; one whose cursors are read must not.
	for _, q := range []string{
		`query($after: Cursor) { posts(first: 4, after: $after, orderBy: {field: UPDATED_AT, direction: ASC}) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`,
		`query($after: Cursor) { posts(first: 4, after: $after) { edges { cursor node { id } } } }`,
		`fragment E on PostEdge { cursor } query($after: Cursor) { posts(first: 4, after: $after, orderBy: {field: UPDATED_AT, direction: DESC}) { edges { node { id } ...E } } }`,
	} {
		seen := map[string]bool{}
		vars := map[string]any{}
		for range len(stored) + 1 {
			r := s.do(t, tok.Access, q, vars).mustOK(t)
			edges := r.get("posts.edges").([]any)
			for _, e := range edges {
				id := e.(map[string]any)["node"].(map[string]any)["id"].(string)
				if seen[id] {
					t.Fatalf("%s: post %s listed twice", q, id)
				}
				seen[id] = true
			}
			if r.get("posts.pageInfo") != nil {
				if r.get("posts.pageInfo.hasNextPage") != true {
					break
				}
				vars["after"] = r.get("posts.pageInfo.endCursor")
				continue
			}
			if len(edges) == 0 {
				break
			}
			vars["after"] = edges[len(edges)-1].(map[string]any)["cursor"]
		}
		if len(seen) != len(stored) {
			t.Errorf("%s: paging listed %d posts, want %d", q, len(seen), len(stored))
		}
	}
}

// Node lookups batch: many ids, one statement per type.
func TestNodeLookupsBatched(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_CACHE_RESPONSE_TTL"] = "0"
	e.env["APP_CACHE_USER_TTL"] = "0"
	s := e.start(t)
	ids := seed(t, s.app.db.Client, 10, 1)
	tok := s.register(t, "reader@example.com", "plum-tree-42", "Reader")
	q := "{"
	for i, id := range ids {
		q += fmt.Sprintf(` n%d: node(id: %q) { id ... on User { name } }`, i, id)
	}
	q += " }"
	r := s.do(t, tok.Access, q, nil).mustOK(t)
	if got := costOf(t, r, "sqlStatements"); got != 1 {
		t.Errorf("10 node lookups: %v SQL statements, want 1", got)
	}
}

// After a mutation returns on one instance, the next read on any other
// instance shows it: through the user tier, the page tier and the
// response tier.
func TestReadYourWritesAcrossInstances(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a, b := e.start(t), e.start(t)
	tok := a.register(t, "ann@example.com", "plum-tree-42", "Ann")
	const feed = `{ posts(first: 5) { totalCount edges { node { id title author { name } } } } }`
	const me = `{ me { name } }`
	warm := func(q string) gqlResponse {
		b.do(t, tok.Access, q, nil).mustOK(t)
		r := b.do(t, tok.Access, q, nil).mustOK(t)
		if got := costOf(t, r, "sqlStatements"); got != 0 {
			t.Fatalf("warm read on B: %v SQL statements, want 0 (cached)", got)
		}
		return r
	}
	warm(feed)
	id := a.createPost(t, tok.Access, "first", "body")
	r := b.do(t, tok.Access, feed, nil).mustOK(t)
	if got, want := r.get("posts.totalCount"), float64(1); got != want {
		t.Fatalf("B after create on A: totalCount=%v, want %v", got, want)
	}
	warm(feed)
	a.do(t, tok.Access, `mutation($id: ID!) { updatePost(id: $id, input: {title: "edited"}) { id } }`, map[string]any{"id": id}).mustOK(t)
	if got, want := b.do(t, tok.Access, feed, nil).mustOK(t).str("posts.edges"), ""; got != want {
		_ = got
	}
	edges := b.do(t, tok.Access, feed, nil).mustOK(t).get("posts.edges").([]any)
	if got, want := edges[0].(map[string]any)["node"].(map[string]any)["title"], "edited"; got != want {
		t.Errorf("B after update on A: title=%v, want %v", got, want)
	}
	warm(feed)
	warm(me)
	a.do(t, tok.Access, `mutation { updateMe(input: {name: "Ann B."}) { name } }`, nil).mustOK(t)
	if got, want := b.do(t, tok.Access, me, nil).mustOK(t).str("me.name"), "Ann B."; got != want {
		t.Errorf("B after updateMe on A: name=%q, want %q", got, want)
	}
	edges = b.do(t, tok.Access, feed, nil).mustOK(t).get("posts.edges").([]any)
	if got, want := edges[0].(map[string]any)["node"].(map[string]any)["author"].(map[string]any)["name"], "Ann B."; got != want {
		t.Errorf("B's feed after updateMe on A: author.name=%v, want %v", got, want)
	}
	warm(feed)
	a.do(t, tok.Access, `mutation($id: ID!) { deletePost(id: $id) }`, map[string]any{"id": id}).mustOK(t)
	if got, want := b.do(t, tok.Access, feed, nil).mustOK(t).get("posts.totalCount"), float64(0); got != want {
		t.Errorf("B after delete on A: totalCount=%v, want %v", got, want)
	}
}

// A persisted query registered through one instance is known to the other.
func TestPersistedQueriesShared(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	a, b := e.start(t), e.start(t)
	tok := a.register(t, "ann@example.com", "plum-tree-42", "Ann")
	const q = `{ me { name } }`
	sum := sha256.Sum256([]byte(q))
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	post := func(s *testServer, query string) gqlResponse {
		body := map[string]any{"extensions": ext}
		if query != "" {
			body["query"] = query
		}
		return s.postJSON(t, tok.Access, body)
	}
	if r := post(b, ""); len(r.Errors) == 0 || r.Errors[0].Message != "PersistedQueryNotFound" {
		t.Fatalf("unknown hash: %+v", r.Errors)
	}
	post(a, q).mustOK(t)
	if got, want := post(b, "").mustOK(t).str("me.name"), "Ann"; got != want {
		t.Errorf("hash only, other instance: me.name=%q, want %q", got, want)
	}
}

// Totals are cached with their list: a warm count costs no COUNT.
func TestTotalCountNotRecounted(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_CACHE_RESPONSE_TTL"] = "0"
	s := e.start(t)
	seed(t, s.app.db.Client, 3, 10)
	tok := s.register(t, "reader@example.com", "plum-tree-42", "Reader")
	const q = `{ posts(first: 1) { totalCount } }`
	s.do(t, tok.Access, q, nil).mustOK(t)
	r := s.do(t, tok.Access, q, nil).mustOK(t)
	if got, want := r.get("posts.totalCount"), float64(30); got != want {
		t.Errorf("totalCount=%v, want %v", got, want)
	}
	if got := costOf(t, r, "sqlStatements"); got != 0 {
		t.Errorf("warm totalCount: %v SQL statements, want 0", got)
	}
}

// Ordering by another field pages consistently in both directions.
func TestPostsOrderByUpdatedAt(t *testing.T) {
	t.Parallel()
	s := newTestEnv(t).start(t)
	seed(t, s.app.db.Client, 2, 5)
	tok := s.register(t, "reader@example.com", "plum-tree-42", "Reader")
	const q = `query($after: Cursor) { posts(first: 4, after: $after, orderBy: {field: UPDATED_AT, direction: ASC}) { edges { node { title } } pageInfo { hasNextPage endCursor } } }`
	var titles []string
	vars := map[string]any{}
	for {
		r := s.do(t, tok.Access, q, vars).mustOK(t)
		for _, e := range r.get("posts.edges").([]any) {
			titles = append(titles, e.(map[string]any)["node"].(map[string]any)["title"].(string))
		}
		if r.get("posts.pageInfo.hasNextPage") != true {
			break
		}
		vars["after"] = r.str("posts.pageInfo.endCursor")
	}
	if len(titles) != 10 || titles[0] != "post 0" || titles[9] != "post 9" {
		t.Errorf("oldest-updated first: %v", titles)
	}
}

func promote(t *testing.T, e *testEnv, email string) {
	t.Helper()
	env := map[string]string{"DATABASE_URL": e.dsn}
	if err := promoteAdmin(t.Context(), []string{email}, func(k string) string { return env[k] }, discard{}, discard{}); err != nil {
		t.Fatalf("promote-admin: %v", err)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// The admin users list pages by keyset, oldest first, both ways; it counts
// the table only for totalCount (never for pageInfo), and once per user
// write, not once per page.
func TestUsersListPagesWithoutRecounting(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_CACHE_RESPONSE_TTL"] = "0"
	a, b := e.start(t), e.start(t)
	seed(t, a.app.db.Client, 24, 1)
	admin := a.register(t, "admin@example.com", "plum-tree-42", "Admin")
	promote(t, e, "admin@example.com")
	const total = 25

	const page = `query($first: Int, $after: Cursor, $last: Int, $before: Cursor) {
		users(first: $first, after: $after, last: $last, before: $before) {
			edges { cursor node { id } }
			pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
		}
	}`
	type pageOf struct {
		ids                  []string
		hasNext, hasPrevious bool
		start, end           string
	}
	get := func(vars map[string]any) pageOf {
		t.Helper()
		r := a.do(t, admin.Access, page, vars).mustOK(t)
		var p pageOf
		for _, e := range r.get("users.edges").([]any) {
			p.ids = append(p.ids, e.(map[string]any)["node"].(map[string]any)["id"].(string))
		}
		p.hasNext, p.hasPrevious = r.get("users.pageInfo.hasNextPage") == true, r.get("users.pageInfo.hasPreviousPage") == true
		p.start, _ = r.get("users.pageInfo.startCursor").(string)
		p.end, _ = r.get("users.pageInfo.endCursor").(string)
		return p
	}

	// Forwards: every user once, in ID (creation) order.
	var all []string
	vars := map[string]any{"first": 10}
	for i := 0; ; i++ {
		p := get(vars)
		all = append(all, p.ids...)
		if got, want := p.hasPrevious, i > 0; got != want {
			t.Errorf("page %d: hasPreviousPage=%v, want %v", i, got, want)
		}
		if !p.hasNext {
			break
		}
		if i > 3 {
			t.Fatal("pagination does not end")
		}
		vars = map[string]any{"first": 10, "after": p.end}
	}
	if len(all) != total || !slices.IsSorted(all) || len(slices.Compact(slices.Clone(all))) != total {
		t.Fatalf("forwards: %d users %v, want %d distinct in ID order", len(all), all, total)
	}
	// Backwards from the end, then before the first page seen.
	p := get(map[string]any{"last": 10})
	if !slices.Equal(p.ids, all[total-10:]) || !p.hasPrevious || p.hasNext {
		t.Errorf("last 10: %v (previous %v, next %v), want %v with a previous page only", p.ids, p.hasPrevious, p.hasNext, all[total-10:])
	}
	p = get(map[string]any{"last": 10, "before": p.start})
	if !slices.Equal(p.ids, all[total-20:total-10]) || !p.hasPrevious || !p.hasNext {
		t.Errorf("10 before those: %v, want %v with pages either side", p.ids, all[total-20:total-10])
	}
	if p := get(map[string]any{"first": 0}); len(p.ids) != 0 || p.hasNext {
		t.Errorf("first 0: %v, hasNextPage %v", p.ids, p.hasNext)
	}

	// What it costs: pageInfo is no COUNT; totalCount is one, then cached.
	const info = `{ users(first: 5) { pageInfo { hasNextPage } } }`
	const counted = `{ users(first: 5) { totalCount pageInfo { hasNextPage } } }`
	base := costOf(t, a.do(t, admin.Access, info, nil).mustOK(t), "sqlStatements") // the page, and the admin's role
	r := a.do(t, admin.Access, counted, nil).mustOK(t)
	if got, want := costOf(t, r, "sqlStatements"), base+1; got != want {
		t.Errorf("totalCount cold: %v SQL statements, want %v", got, want)
	}
	if got := r.get("users.totalCount"); got != float64(total) {
		t.Errorf("totalCount=%v, want %d", got, total)
	}
	for _, s := range []*testServer{a, b, a} {
		r := s.do(t, admin.Access, counted, nil).mustOK(t)
		if got := costOf(t, r, "sqlStatements"); got != base {
			t.Errorf("totalCount warm: %v SQL statements, want %v (no COUNT)", got, base)
		}
	}
	// A sign-up on B: the next count on A includes it.
	b.register(t, "new@example.com", "plum-tree-42", "New")
	r = a.do(t, admin.Access, counted, nil).mustOK(t)
	if got := r.get("users.totalCount"); got != float64(total+1) {
		t.Errorf("totalCount after a sign-up on another instance: %v, want %d", got, total+1)
	}

	// Cursors that are not this list's are bad input.
	posts := a.do(t, admin.Access, `{ posts(first: 1) { pageInfo { endCursor } } }`, nil)
	for name, c := range map[string]any{"a post's cursor": posts.get("posts.pageInfo.endCursor"), "not a cursor": "bm90IGEgY3Vyc29y"} {
		if c == nil {
			t.Fatalf("%s: none", name)
		}
		if got, want := a.do(t, admin.Access, page, map[string]any{"first": 5, "after": c}).code(t), "BAD_USER_INPUT"; got != want {
			t.Errorf("%s: code=%q, want %q", name, got, want)
		}
	}
}
