package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const registerQ = `mutation($e: String!) { register(input: {email: $e, password: "plum-tree-42", name: "N"}) { accessToken refreshToken } }`

// codes tallies the extensions.code of each response (OK: no error).
func codes(rs []gqlResponse) map[string]int {
	out := map[string]int{}
	for _, r := range rs {
		if len(r.Errors) == 0 {
			out["OK"]++
			continue
		}
		c, _ := r.Errors[0].Extensions["code"].(string)
		out[c]++
	}
	return out
}

// An attacker failing from elsewhere cannot lock the owner out: the
// owner's known address and known browser keep budgets of their own, while
// the attacker stays throttled.
func TestLoginLockoutResistance(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_TRUSTED_PROXIES"] = "127.0.0.1/32,::1"
	s := e.start(t)
	const (
		office   = "198.51.100.7"
		home     = "198.51.100.80"
		attacker = "203.0.113.9"
		travel   = "192.0.2.44"
		right    = "plum-tree-42"
	)
	s.as(t, caller{addr: office}, registerQ, map[string]any{"e": "ann@example.com"}).mustOK(t)
	// Ann signs in once in a browser at home: it gets a device cookie.
	r := s.as(t, caller{addr: home, web: true}, loginQ, loginVars("ann@example.com", right)).mustOK(t)
	device := r.cookie("__Host-authql-dev")
	if device == nil {
		t.Fatal("web login set no device cookie")
	}
	if !device.HttpOnly || !device.Secure || device.SameSite != http.SameSiteStrictMode || device.Path != "/" || device.Domain != "" {
		t.Errorf("device cookie attributes: %+v", device)
	}

	var attempts []gqlResponse
	for i := range 60 {
		attempts = append(attempts, s.as(t, caller{addr: attacker}, loginQ, loginVars("ann@example.com", fmt.Sprintf("guess-%d-xyz", i))))
	}
	if got, want := codes(attempts), map[string]int{"UNAUTHENTICATED": 10, "RATE_LIMITED": 50}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("60 guesses from one address: %v, want %v", got, want)
	}

	// The owner gets in from a known address, and from the known browser
	// at an address never seen.
	s.as(t, caller{addr: office}, loginQ, loginVars("ann@example.com", right)).mustOK(t)
	s.as(t, caller{addr: travel, web: true, cookies: []*http.Cookie{device}}, loginQ, loginVars("ann@example.com", right)).mustOK(t)
	// The attacker stays throttled, even with the right password; so does
	// anyone the account does not know (the limit of the design).
	for name, c := range map[string]caller{"attacker": {addr: attacker}, "unknown address": {addr: "192.0.2.99"}} {
		if got, want := s.as(t, c, loginQ, loginVars("ann@example.com", right)).code(t), "RATE_LIMITED"; got != want {
			t.Errorf("%s with the right password: code=%q, want %q", name, got, want)
		}
	}
	// The device cookie is no credential on its own: it neither refreshes
	// nor authenticates.
	if got, want := s.as(t, caller{addr: travel, web: true, cookies: []*http.Cookie{device}}, `mutation { refresh { accessToken } }`, nil).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("refresh with only the device cookie: code=%q, want %q", got, want)
	}
	if got, want := s.as(t, caller{addr: travel, token: device.Value}, `{ me { id } }`, nil).code(t), "UNAUTHENTICATED"; got != want {
		t.Errorf("device token as a bearer token: code=%q, want %q", got, want)
	}
}

// Parallel guesses cannot slip past an account's budget: it is looked at
// while a hashing slot is held and charged after a failure, so at most one
// guess per other slot overshoots it.
func TestLoginParallelGuessesBounded(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_TRUSTED_PROXIES"] = "127.0.0.1/32,::1"
	e.env["APP_RATE_LOGIN_ACCOUNT"] = "5/1h"
	e.env["APP_PASSWORD_HASH_CONCURRENCY"] = "2"
	e.env["APP_PASSWORD_HASH_WAIT"] = "30s"
	s := e.start(t)
	s.as(t, caller{addr: "198.51.100.7"}, registerQ, map[string]any{"e": "ann@example.com"}).mustOK(t)
	rs := make([]gqlResponse, 30)
	var wg sync.WaitGroup
	for i := range rs {
		wg.Go(func() {
			rs[i] = s.as(t, caller{addr: fmt.Sprintf("203.0.113.%d", i+1)}, loginQ, loginVars("ann@example.com", fmt.Sprintf("guess-%d-xyz", i)))
		})
	}
	wg.Wait()
	got := codes(rs)
	if n := got["UNAUTHENTICATED"]; n < 5 || n > 5+2-1 {
		t.Errorf("guesses checked=%d, want 5 to 6 (the budget, plus one per other hashing slot): %v", n, got)
	}
	if got["UNAUTHENTICATED"]+got["RATE_LIMITED"] != len(rs) {
		t.Errorf("codes=%v, want only UNAUTHENTICATED and RATE_LIMITED", got)
	}
}

// Per-address limits key an IPv6 client by its /64: a client picking new
// addresses in its own /64 meets the same limit. IPv4 stays per address.
func TestIPv6AddressesShareTheirPrefix(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_TRUSTED_PROXIES"] = "127.0.0.1/32,::1"
	e.env["APP_RATE_LOGIN_IP"] = "3/1h"
	e.env["APP_RATE_REGISTER_IP"] = "2/1h"
	e.env["APP_RATE_API"] = "2/1h"
	e.env["APP_RATE_REFRESH_IP"] = "2/1h"
	s := e.start(t)
	// sends op from each address in turn; wants the last one refused and
	// every other one answered with okCode.
	limited := func(name, query string, vars func(i int) map[string]any, okCode string, addrs ...string) {
		t.Helper()
		for i, a := range addrs {
			r := s.as(t, caller{addr: a}, query, vars(i))
			got := "OK"
			if len(r.Errors) > 0 {
				got = r.code(t)
			}
			want := okCode
			if i == len(addrs)-1 {
				want = "RATE_LIMITED"
			}
			if got != want {
				t.Errorf("%s from %s (#%d): code=%q, want %q", name, a, i+1, got, want)
			}
		}
	}
	unknown := func(i int) map[string]any { return loginVars(fmt.Sprintf("nobody%d@example.com", i), "guess-xyz-123") }
	limited("login", loginQ, unknown, "UNAUTHENTICATED", "2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3", "2001:db8:1:2::4")
	limited("login", loginQ, unknown, "UNAUTHENTICATED", "198.51.100.1", "198.51.100.1", "198.51.100.1", "198.51.100.1")
	limited("sign-up", registerQ, func(i int) map[string]any { return map[string]any{"e": fmt.Sprintf("v6-%d@example.com", i)} },
		"OK", "2001:db8:9:9::a", "2001:db8:9:9::b", "2001:db8:9:9::c")
	limited("anonymous API", `{ __typename }`, func(int) map[string]any { return nil },
		"OK", "2001:db8:7:7::1", "2001:db8:7:7::2", "2001:db8:7:7::3")
	limited("refresh", `mutation { refresh(refreshToken: "rt.nonsense") { accessToken } }`, func(int) map[string]any { return nil },
		"UNAUTHENTICATED", "2001:db8:5:5::1", "2001:db8:5:5::2", "2001:db8:5:5::3")
	// Another /64, and another IPv4 address, have budgets of their own.
	for _, a := range []string{"2001:db8:1:3::1", "198.51.100.2"} {
		if got, want := s.as(t, caller{addr: a}, loginQ, unknown(99)).code(t), "UNAUTHENTICATED"; got != want {
			t.Errorf("login from %s: code=%q, want %q", a, got, want)
		}
	}
}

// Refresh has a budget per session and one per address; a token forged
// with a session's ids spends none of the session's.
func TestRefreshRateLimited(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_RATE_REFRESH_SESSION"] = "3/1h"
	s := e.start(t)
	ann := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	other := s.login(t, "ann@example.com", "plum-tree-42")

	// Forged tokens naming Ann's session are refused and cost it nothing.
	_, sid, _ := strings.Cut(strings.TrimPrefix(ann.Refresh, "rt."), ".")
	sid, _, _ = strings.Cut(sid, ".")
	forged := "rt." + ann.UserID + "." + sid + "." + strings.Repeat("A", 43)
	for range 5 {
		if got, want := s.refresh(t, forged).code(t), "UNAUTHENTICATED"; got != want {
			t.Fatalf("forged token: code=%q, want %q", got, want)
		}
	}
	rt := ann.Refresh
	for range 3 {
		rt = s.refresh(t, rt).mustOK(t).str("refresh.refreshToken")
	}
	r := s.refresh(t, rt)
	if got, want := r.code(t), "RATE_LIMITED"; got != want {
		t.Fatalf("fourth refresh within the hour: code=%q, want %q", got, want)
	}
	if ra, _ := r.Errors[0].Extensions["retryAfter"].(float64); ra < 1 {
		t.Errorf("retryAfter=%v, want ≥ 1 second", r.Errors[0].Extensions["retryAfter"])
	}
	if r.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After header")
	}
	// The refused token was not rotated: it works once the budget refills.
	s.refresh(t, other.Refresh).mustOK(t) // another session has its own budget
	e.clock.Advance(20 * time.Minute)
	s.refresh(t, rt).mustOK(t)
}

// With the default limits, a client that refreshes every 15 minutes from
// three racing tabs is never refused, all day.
func TestRefreshNormalClientNeverLimited(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.start(t)
	rt := s.register(t, "ann@example.com", "plum-tree-42", "Ann").Refresh
	for range 24 * 4 {
		e.clock.Advance(15 * time.Minute)
		tabs := make([]gqlResponse, 3)
		var wg sync.WaitGroup
		for i := range tabs {
			wg.Go(func() { tabs[i] = s.refresh(t, rt) })
		}
		wg.Wait()
		for _, r := range tabs {
			r.mustOK(t)
		}
		rt = tabs[0].str("refresh.refreshToken")
	}
}

// With the API rate limit on, an operation charged to budget this instance
// has leased costs no Redis round trip: authenticated { __typename } costs
// Redis nothing once the lease is taken, while the budget still refuses
// past its end.
func TestAPIBudgetLeasedNoRoundTrip(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_DEBUG_COST"] = "true"
	e.env["APP_RATE_API"] = "10000/1h" // leased in slices of 100
	s := e.start(t)
	ann := s.register(t, "ann@example.com", "plum-tree-42", "Ann")
	first := s.do(t, ann.Access, `{ __typename }`, nil).mustOK(t)
	// The lease: EVALSHA, and EVAL the first time the script meets this Redis.
	if got := costOf(t, first, "redisRoundTrips"); got < 1 || got > 2 {
		t.Errorf("first operation: %v Redis round trips, want 1 or 2 (the lease)", got)
	}
	// Other work may rarely take a round trip of its own (a cache
	// write-back): the 50 operations are judged together.
	var trips float64
	for range 50 {
		trips += costOf(t, s.do(t, ann.Access, `{ __typename }`, nil).mustOK(t), "redisRoundTrips")
	}
	if trips > 2 {
		t.Errorf("50 operations within the lease: %v Redis round trips, want about 0", trips)
	}
	// A second instance leases a slice of its own from the same bucket.
	other := e.start(t)
	if got := costOf(t, other.do(t, ann.Access, `{ __typename }`, nil).mustOK(t), "redisRoundTrips"); got < 1 || got > 2 {
		t.Errorf("first operation on another instance: %v Redis round trips, want 1 (its lease)", got)
	}
	e.env["APP_RATE_API"] = "20/1h" // under 1/LeaseShare: no lease, a round trip each
	small := e.start(t)
	bob := small.register(t, "bob@example.com", "plum-tree-42", "Bob")
	trips = 0
	for range 20 {
		trips += costOf(t, small.do(t, bob.Access, `{ __typename }`, nil).mustOK(t), "redisRoundTrips")
	}
	if trips < 20 {
		t.Errorf("20 operations on a small budget: %v Redis round trips, want ≥ 20 (one each)", trips)
	}
	if got, want := small.do(t, bob.Access, `{ __typename }`, nil).code(t), "RATE_LIMITED"; got != want {
		t.Errorf("past the budget: code=%q, want %q", got, want)
	}
}
