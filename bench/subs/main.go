// Command subs loads servers with subscription sockets and measures what
// they cost: RSS growth per socket, idle CPU, fan-out latency of a few
// events and the answer time of the mutation that publishes them. It reads
// the server's RSS and CPU from /proc (Linux), so it runs on the same
// machine. bench/subs.sh starts a server and runs it; deploy/topology.sh
// spreads sockets over two instances (-url a,b) and publishes through one.
// It exits non-zero if an event misses a socket.
//
//	go run ./bench/subs -url http://127.0.0.1:8080 -pid 1234 -sockets 10000
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "subs:", err)
		os.Exit(1)
	}
}

type config struct {
	url      string   // where mutations go: the first of urls
	urls     []string // sockets are spread over these, in turn
	token    string
	pid      int
	sockets  int
	events   int
	interval time.Duration
	idle     time.Duration
	parallel int
}

func run() error {
	var c config
	urls := flag.String("url", "http://127.0.0.1:8080", "the servers, comma-separated: sockets are spread over them, mutations go to the first")
	flag.StringVar(&c.token, "token", "", "an access token (default: register a new user)")
	flag.IntVar(&c.pid, "pid", 0, "the server's process id (RSS and CPU from /proc; 0: not measured)")
	flag.IntVar(&c.sockets, "sockets", 1000, "sockets to open, one postCreated subscription each")
	flag.IntVar(&c.events, "events", 3, "events to publish")
	flag.DurationVar(&c.interval, "interval", 2*time.Second, "time between events")
	flag.DurationVar(&c.idle, "idle", 10*time.Second, "how long idle CPU is measured over")
	flag.IntVar(&c.parallel, "parallel", 50, "sockets opened at once")
	flag.Parse()
	c.urls = strings.Split(*urls, ",")
	c.url = c.urls[0]
	if err := raiseFileLimit(c.sockets + 256); err != nil {
		return err
	}
	token := c.token
	if token == "" {
		var err error
		if token, err = register(c.url); err != nil {
			return err
		}
	}
	base := rss(c.pid)
	if c.pid != 0 {
		fmt.Printf("server RSS before sockets: %.1f MiB\n", mib(base))
	}

	start := time.Now()
	clients, err := openAll(c, token)
	if err != nil {
		return err
	}
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.conn.CloseNow()
			}
		}
	}()
	subscribed := rss(c.pid)
	fmt.Printf("%d sockets over %d instance(s) subscribed in %v\n", len(clients), len(c.urls), time.Since(start).Round(time.Millisecond))
	if c.pid != 0 {
		fmt.Printf("RSS %.1f MiB (%.1f KiB a socket)\n", mib(subscribed), kib(subscribed-base)/float64(len(clients)))
	}

	if c.pid != 0 && c.idle > 0 {
		time.Sleep(2 * time.Second) // let the opening settle
		cpu0, t0 := cpuTicks(c.pid), time.Now()
		time.Sleep(c.idle)
		idle := float64(cpuTicks(c.pid)-cpu0) / 100 / time.Since(t0).Seconds() * 100
		fmt.Printf("idle CPU over %v: %.2f %% of one core\n", c.idle, idle)
	}

	missed := 0
	for i := range c.events {
		if i > 0 {
			time.Sleep(c.interval)
		}
		n, err := event(c, token, clients, i)
		if err != nil {
			return err
		}
		missed += len(clients) - n
	}
	after := rss(c.pid)
	if c.pid != 0 {
		fmt.Printf("RSS after events: %.1f MiB (%.1f KiB a socket over the base)\n", mib(after), kib(after-base)/float64(len(clients)))
	}
	if missed > 0 {
		return fmt.Errorf("%d deliveries missed", missed)
	}
	return nil
}

// client is one socket; got[i] is when it received event i (0: not yet).
type client struct {
	conn *websocket.Conn
	got  []atomic.Int64
}

func openAll(c config, token string) ([]*client, error) {
	clients := make([]*client, c.sockets)
	sem := make(chan struct{}, c.parallel)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for i := range clients {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			cl, err := open(c.urls[i%len(c.urls)], c.events, token)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("socket %d: %w", i, err)
			}
			clients[i] = cl
		}()
	}
	wg.Wait()
	return clients, firstErr
}

func open(url string, events int, token string) (*client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/query",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		return nil, err
	}
	send := func(s string) error { return conn.Write(ctx, websocket.MessageText, []byte(s)) }
	if err := send(`{"type":"connection_init","payload":{"Authorization":"Bearer ` + token + `"}}`); err != nil {
		return nil, err
	}
	if err := expect(ctx, conn, "connection_ack"); err != nil {
		return nil, err
	}
	// The pong answers after the subscribe was handled: it is live.
	if err := send(`{"id":"1","type":"subscribe","payload":{"query":"subscription { postCreated { id title } }"}}`); err != nil {
		return nil, err
	}
	if err := send(`{"type":"ping"}`); err != nil {
		return nil, err
	}
	if err := expect(ctx, conn, "pong"); err != nil {
		return nil, err
	}
	cl := &client{conn: conn, got: make([]atomic.Int64, events)}
	go cl.read(ctx)
	return cl, nil
}

func expect(ctx context.Context, conn *websocket.Conn, typ string) error {
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		var m struct{ Type string }
		_ = json.Unmarshal(b, &m)
		switch m.Type {
		case typ:
			return nil
		case "ping":
			continue
		}
		return fmt.Errorf("got %s, want %s", b, typ)
	}
}

// read records when each event arrives: the titles are "event <i>".
func (cl *client) read(context.Context) {
	for {
		_, b, err := cl.conn.Read(context.Background())
		if err != nil {
			return
		}
		now := time.Now().UnixNano()
		if bytes.Contains(b, []byte(`"type":"ping"`)) {
			_ = cl.conn.Write(context.Background(), websocket.MessageText, []byte(`{"type":"pong"}`))
			continue
		}
		if i := bytes.Index(b, []byte(`"title":"event `)); i >= 0 {
			rest := b[i+len(`"title":"event `):]
			if j := bytes.IndexByte(rest, '"'); j > 0 {
				if n, err := strconv.Atoi(string(rest[:j])); err == nil && n < len(cl.got) {
					cl.got[n].Store(now)
				}
			}
		}
	}
}

// event publishes event i, reports the mutation's answer time and the
// fan-out latency to every socket, and returns how many it reached.
func event(c config, token string, clients []*client, i int) (int, error) {
	start := time.Now()
	if _, err := gql(c.url, token, `mutation($t: String!) { createPost(input: {title: $t, content: "x"}) { id } }`,
		map[string]any{"t": fmt.Sprintf("event %d", i)}); err != nil {
		return 0, err
	}
	answered := time.Since(start)
	deadline := time.Now().Add(30 * time.Second)
	var lat []time.Duration
	for time.Now().Before(deadline) {
		lat = lat[:0]
		for _, cl := range clients {
			if t := cl.got[i].Load(); t != 0 {
				lat = append(lat, time.Duration(t-start.UnixNano()))
			}
		}
		if len(lat) == len(clients) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(time.Millisecond)
	}
	fmt.Printf("event %d: createPost answered in %v; reached %d/%d sockets: p50 %v, p99 %v, max %v\n",
		i, answered.Round(100*time.Microsecond), len(lat), len(clients), q(0.50), q(0.99), q(1))
	return len(lat), nil
}

func register(url string) (string, error) {
	email := fmt.Sprintf("subs%d@example.com", time.Now().UnixNano())
	data, err := gql(url, "", `mutation($e: String!) { register(input: {email: $e, password: "a bench password", name: "Bench"}) { accessToken } }`,
		map[string]any{"e": email})
	if err != nil {
		return "", err
	}
	var d struct{ Register struct{ AccessToken string } }
	if err := json.Unmarshal(data, &d); err != nil || d.Register.AccessToken == "" {
		return "", fmt.Errorf("register: %s", data)
	}
	return d.Register.AccessToken, nil
}

func gql(url, token, query string, vars map[string]any) (json.RawMessage, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, url+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Data   json.RawMessage
		Errors []any
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.Errors) > 0 {
		return nil, fmt.Errorf("%s: %v %v", query, err, r.Errors)
	}
	return r.Data, nil
}

// raiseFileLimit raises this process's open-file soft limit to the hard
// one (Go does so at start-up too) and checks it holds n.
func raiseFileLimit(n int) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur < uint64(n) {
		return fmt.Errorf("open-file limit %d < %d: raise the hard limit (ulimit -Hn)", l.Cur, n)
	}
	return nil
}

// rss is a process's resident set in bytes.
func rss(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTicks is a process's user + system CPU time in clock ticks (1/100 s).
func cpuTicks(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
func kib(b int64) float64 { return float64(b) / (1 << 10) }
