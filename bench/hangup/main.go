// Command hangup drives a GraphQL endpoint with clients that hang up: each
// request is abandoned at a random moment within -within, most of them
// while the server is still working on it. It prints how many requests
// were answered and how many were abandoned. bench/run.sh reads the
// server's authql_db_connections_opened_total before and after.
//
//	go run ./bench/hangup -url http://127.0.0.1:8080/query -token "$TOKEN" -duration 5s
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080/query", "the GraphQL endpoint")
	token := flag.String("token", "", "bearer token (optional)")
	query := flag.String("query", `{ posts(first: 20) { edges { node { id title author { name } } } } }`, "the operation")
	clients := flag.Int("clients", 32, "concurrent clients")
	duration := flag.Duration("duration", 5*time.Second, "how long to run")
	within := flag.Duration("within", 3*time.Millisecond, "each request is abandoned at a random moment within this")
	flag.Parse()
	body, err := json.Marshal(map[string]string{"query": *query})
	if err != nil {
		fmt.Fprintln(os.Stderr, "hangup:", err)
		os.Exit(1)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients}}
	var answered, abandoned, failed atomic.Int64
	stop := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for range *clients {
		wg.Go(func() {
			for time.Now().Before(stop) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.Int64N(int64(*within))+1))
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, *url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if *token != "" {
					req.Header.Set("Authorization", "Bearer "+*token)
				}
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
				switch {
				case err == nil && resp.StatusCode == http.StatusOK:
					answered.Add(1)
				case ctx.Err() != nil:
					abandoned.Add(1)
				default:
					failed.Add(1)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	fmt.Printf("answered %d, abandoned %d, failed %d\n", answered.Load(), abandoned.Load(), failed.Load())
	if failed.Load() > 0 {
		os.Exit(1)
	}
}
