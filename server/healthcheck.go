package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck asks the server over HTTP whether it is ready, for container
// health checks: distroless images have no curl or wget, so the image runs
// its own binary. It returns nil (exit status 0) if the URL answers 200
// within the timeout, an error (exit status 1) otherwise.
//
//	server healthcheck [-url URL] [-timeout 2s]
//
// Without -url it asks /readyz on the port of APP_ADDR, the same variable
// the server listens on, so the check follows the server when it moves.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "URL that must answer 200 (default: http://<APP_ADDR, on loopback if it names no host>/readyz)")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for the whole answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("usage: server healthcheck [-url URL] [-timeout 2s]")
	}
	if *url == "" {
		u, err := readyURL(getenv)
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		*url = u
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	client := &http.Client{
		// A redirect is not "ready": report the status we got.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", *url, res.Status)
	}
	fmt.Fprintf(stdout, "healthy: %s answered %s\n", *url, res.Status)
	return nil
}

// readyURL is /readyz on the address the server listens on: APP_ADDR (or
// its default). A listener on every interface (":8080", "0.0.0.0:8080",
// "[::]:8080") is asked on loopback.
func readyURL(getenv func(string) string) (string, error) {
	addr := getenv("APP_ADDR")
	if addr == "" {
		for _, s := range settings() {
			if s.env == "APP_ADDR" {
				addr = s.def
			}
		}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "", fmt.Errorf("APP_ADDR %q is not host:port (give -url instead)", addr)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}
