package main

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/authql/authql/graph"
)

// proxies knows which peers are our own reverse proxies. Only their
// X-Forwarded-For and X-Forwarded-Proto are believed; a client's own are
// ignored, so nobody can pick the address their rate limits are charged to.
type proxies struct{ trusted []netip.Prefix }

func (p proxies) isTrusted(a netip.Addr) bool {
	for _, pre := range p.trusted {
		if pre.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// peer is the TCP peer of the request.
func peer(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	return a.Unmap(), err == nil
}

// clientIP is the address the request came from: the TCP peer, unless the
// peer is a trusted proxy, in which case the right-most address of
// X-Forwarded-For that is not itself a trusted proxy (the left-most ones are
// whatever the client chose to send).
func (p proxies) clientIP(r *http.Request) string {
	a, ok := peer(r)
	if !ok {
		return r.RemoteAddr
	}
	if !p.isTrusted(a) {
		return a.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: trust nothing left of it
		}
		a = h.Unmap()
		if !p.isTrusted(a) {
			return a.String()
		}
	}
	return a.String()
}

// isHTTPS reports whether the client reached us over TLS: directly, or
// through a trusted proxy that says so in X-Forwarded-Proto.
func (p proxies) isHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	a, ok := peer(r)
	if !ok || !p.isTrusted(a) {
		return false
	}
	protos := strings.Split(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(protos[len(protos)-1]), "https")
}

// requireHTTPS refuses plain HTTP in production: GET and HEAD are
// redirected to https, anything else is refused (a redirected POST would
// already have sent its credentials in the clear). HTTPS responses carry
// HSTS. Health probes stay reachable over plain HTTP for load balancers.
func (p proxies) requireHTTPS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.isHTTPS(r) {
			w.Header().Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
			next.ServeHTTP(w, r)
			return
		}
		switch {
		case r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics":
			next.ServeHTTP(w, r)
		case r.Method == http.MethodGet || r.Method == http.MethodHead:
			u := *r.URL
			u.Scheme, u.Host = "https", r.Host
			http.Redirect(w, r, u.String(), http.StatusPermanentRedirect)
		default:
			writeError(w, r, graph.CodeHTTPSRequired, "this server accepts only HTTPS")
		}
	})
}
