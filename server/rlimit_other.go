//go:build !unix

package main

import "log/slog"

// logFileLimit: no RLIMIT_NOFILE here.
func logFileLimit(*slog.Logger) {}
