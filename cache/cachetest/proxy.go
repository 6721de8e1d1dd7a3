package cachetest

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to a Redis and plays the faults a process
// meets: Freeze holds every byte in both directions (a paused process, or a
// stalled network) until Thaw; Cut closes every connection and refuses new
// ones until Resume.
type Proxy struct {
	// URL is the Redis URL through the proxy.
	URL string

	ln     net.Listener
	target string
	// gate is held for writing while frozen; every forwarded write holds
	// it for reading.
	gate sync.RWMutex

	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

// NewProxy starts a proxy in front of the single Redis at redisURL, stopped
// when tb ends.
func NewProxy(tb testing.TB, redisURL string) *Proxy {
	tb.Helper()
	u, err := url.Parse(redisURL)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{ln: ln, target: u.Host}
	pu := *u
	pu.Host = ln.Addr().String()
	p.URL = pu.String()
	go p.serve()
	tb.Cleanup(func() { _ = ln.Close(); p.Cut() })
	return p
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate.RLock()
			_, werr := dst.Write(buf[:n])
			p.gate.RUnlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_ = src.Close()
			}
			return
		}
	}
}

// Freeze stops every byte from moving until Thaw.
func (p *Proxy) Freeze() { p.gate.Lock() }

// Thaw lets the bytes held by Freeze through.
func (p *Proxy) Thaw() { p.gate.Unlock() }

// Cut closes every connection and refuses new ones until Resume.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// Resume accepts connections again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}
