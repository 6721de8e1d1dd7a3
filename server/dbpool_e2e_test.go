package main

import (
	"sync"
	"testing"
	"time"

	"github.com/authql/authql/ent/entdb"
)

// A steady load opens no database connections once the pool is warm:
// the pool keeps idle what the load uses (database/sql keeps 2 unless told,
// and every request beyond them would open and close one), and
// authql_db_connections_opened_total says so.
func TestSteadyLoadOpensNoConnections(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t).uncached() // every request reads the database
	e.env["APP_RATE_API"] = "100000000/1m"
	s := e.start(t)
	seed(t, s.app.db.Client, 10, 5)
	tok := s.register(t, "reader@example.com", "plum-tree-42", "Reader")
	const page = `{ posts(first: 20) { edges { node { id title author { name } } } } }`
	const clients = 16
	round := func() float64 {
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for range 10 {
					s.do(t, tok.Access, page, nil).mustOK(t)
				}
			})
		}
		wg.Wait()
		return sample(t, scrape(t, s.URL+"/metrics"), `authql_db_connections_opened_total`)
	}
	warm := round()
	if warm < 1 {
		t.Fatalf("authql_db_connections_opened_total=%v after a load, want ≥ 1", warm)
	}
	// The pool grows to the most requests that ever ran at once (16
	// clients), and keeps what it opened: a pool that closed idle
	// connections would open about one per request (480 here).
	round()
	if got := round(); got > clients+4 {
		t.Errorf("three rounds of %d clients opened %v connections, want at most about one per client (%v after the first round)", clients, got, warm)
	}
	if limit := entdb.DefaultMaxConns(); s.app.db.Dialect == "postgres" && warm > float64(limit) {
		t.Errorf("%v PostgreSQL connections, want ≤ %d (the default bound)", warm, limit)
	}
}

// No write waits for a second connection while it holds one: with a pool
// of one, each mutation that writes in a transaction completes (an admin's edit of
// another's post included). A transaction that asks the pool for a second
// connection waits for itself here, and under load with any pool size when
// every connection is such a transaction.
func TestWritesWithinAPoolOfOne(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_DB_MAX_OPEN_CONNS"] = "1"
	s := e.start(t)
	u := enableMFA(t, e, s, "pool@example.com") // register, enrollTotp, confirmTotp
	r := s.verifyMfa(t, s.challenge(t, u.email, u.password), code(t, u.secret, e.clock.Now())).mustOK(t)
	access := r.str("verifyMfa.accessToken")
	s.do(t, access, `mutation { updateMe(input: {name: "Pool B."}) { name } }`, nil).mustOK(t)
	id := s.createPost(t, access, "Pooled", "One connection")
	upd := `mutation($id: ID!) { updatePost(id: $id, input: {title: "Pooled again"}) { title } }`
	s.do(t, access, upd, map[string]any{"id": id}).mustOK(t)
	// Another user's edit reads the editor's role in the transaction:
	// refused, then allowed once the editor is an admin.
	other := s.register(t, "editor@example.com", "plum-tree-42", "Editor")
	if got, want := s.do(t, other.Access, upd, map[string]any{"id": id}).code(t), "FORBIDDEN"; got != want {
		t.Fatalf("another user's edit: code=%q, want %q", got, want)
	}
	promote(t, e, "editor@example.com")
	s.do(t, other.Access, upd, map[string]any{"id": id}).mustOK(t)
	s.do(t, access, `mutation($id: ID!) { deletePost(id: $id) }`, map[string]any{"id": id}).mustOK(t)
	ref := s.refresh(t, r.str("verifyMfa.refreshToken")).mustOK(t)
	access = ref.str("refresh.accessToken")
	pw := s.do(t, access, `mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { accessToken } }`,
		map[string]any{"c": u.password, "n": "a new good password"}).mustOK(t)
	access = pw.str("changePassword.accessToken")
	e.clock.Advance(30 * time.Second) // a code of a step not used yet
	s.do(t, access, `mutation($c: String!) { disableTotp(code: $c) }`, map[string]any{"c": code(t, u.secret, e.clock.Now())}).mustOK(t)
	s.do(t, access, `mutation { logout(scope: ALL) }`, nil).mustOK(t)
	s.login(t, u.email, "a new good password")
}
