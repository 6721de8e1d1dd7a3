package main

import (
	"fmt"
	"testing"
)

const registerQ = `mutation($e: String!) { register(input: {email: $e, password: "plum-tree-42", name: "N"}) { accessToken refreshToken } }`

// Per-address limits key an IPv6 client by its /64: a client picking new
// addresses in its own /64 meets the same limit. IPv4 stays per address.
func TestIPv6AddressesShareTheirPrefix(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.env["APP_TRUSTED_PROXIES"] = "127.0.0.1/32,::1"
	e.env["APP_RATE_LOGIN_IP"] = "3/1h"
	e.env["APP_RATE_REGISTER_IP"] = "2/1h"
	e.env["APP_RATE_API"] = "2/1h"
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
	// Another /64, and another IPv4 address, have budgets of their own.
	for _, a := range []string{"2001:db8:1:3::1", "198.51.100.2"} {
		if got, want := s.as(t, caller{addr: a}, loginQ, unknown(99)).code(t), "UNAUTHENTICATED"; got != want {
			t.Errorf("login from %s: code=%q, want %q", a, got, want)
		}
	}
}
