//go:build unix

package main

import (
	"context"
	"log/slog"
	"syscall"
)

// logFileLimit reports the open-file limit once at start-up: every
// WebSocket holds a descriptor, so it bounds the sockets an instance can
// hold. Go has raised the soft limit to the hard one already (os package,
// since Go 1.19); the metric is process_max_fds.
func logFileLimit(log *slog.Logger) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		log.Warn("cannot read the open-file limit", slog.Any("error", err))
		return
	}
	level := slog.LevelInfo
	if l.Cur < 16384 {
		level = slog.LevelWarn // fewer than ~16,000 sockets; raise the hard limit (LimitNOFILE, ulimit -Hn)
	}
	log.Log(context.Background(), level, "open-file limit (WebSockets and connections an instance can hold)",
		slog.Uint64("soft", l.Cur), slog.Uint64("hard", l.Max))
}
