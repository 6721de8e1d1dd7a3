package auth

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authql/authql/ent/schema/pulid"
)

// touchEvery is how often at most a session's last-used time is written.
const touchEvery = time.Minute

// toucher records session use without a Redis write per request: Touch only
// notes the time in memory, and flush writes the sessions due, in one
// pipeline, at most once a minute per session. Idle expiry is enforced at
// refresh (an access token lives 15 minutes, the idle timeout is 30), so a
// last-used time up to a minute stale changes nothing.
type toucher struct {
	// written maps a touchKey to when that session's last-used time was
	// last written (time.Time). Every authenticated request reads it,
	// without a lock; mu serializes the writers and guards due.
	written sync.Map
	mu      sync.Mutex
	due     map[touchKey]time.Time // sessions to write, with their use time
}

type touchKey struct {
	user    pulid.ID
	session string
}

// Touch notes that the viewer's session was used at now.
func (s *Sessions) Touch(v Viewer) {
	now := s.cfg.Now()
	k := touchKey{v.UserID, v.SessionID}
	t := &s.touch
	// Fast path, no lock: most requests come within a minute of the last
	// write of their session.
	if last, ok := t.written.Load(k); ok && now.Sub(last.(time.Time)) < touchEvery {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.written.Load(k); ok && now.Sub(last.(time.Time)) < touchEvery {
		return
	}
	if t.due == nil {
		t.due = map[touchKey]time.Time{}
	}
	t.written.Store(k, now)
	t.due[k] = now
}

// flushTouches writes the due last-used times. Entries of sessions not used
// for longer than the idle timeout are forgotten.
func (s *Sessions) flushTouches(ctx context.Context) {
	t := &s.touch
	t.mu.Lock()
	due := t.due
	t.due = map[touchKey]time.Time{}
	now := s.cfg.Now()
	t.written.Range(func(k, at any) bool {
		if now.Sub(at.(time.Time)) > s.cfg.IdleTimeout {
			t.written.Delete(k)
		}
		return true
	})
	t.mu.Unlock()
	if len(due) == 0 {
		return
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, at := range due {
			// Eval, not EvalSha: a pipeline cannot fall back on NOSCRIPT.
			touchScript.Eval(ctx, p, []string{s.keys.session(k.user, k.session)}, at.UnixMilli(), s.cfg.IdleTimeout.Milliseconds())
		}
		return nil
	})
	if err != nil {
		// Losing a last-used update only makes a session look idler than it
		// was; the next use is written again. A flush cut short by shutdown
		// is not worth a warning.
		if !errors.Is(ctx.Err(), context.Canceled) {
			s.cfg.Log.WarnContext(ctx, "record session use", slog.Any("error", err), slog.Int("sessions", len(due)))
		}
		t.mu.Lock()
		for k := range due {
			t.written.Delete(k)
		}
		t.mu.Unlock()
	}
}

// stopFlushTimeout bounds the last flush of last-used times at shutdown.
const stopFlushTimeout = 250 * time.Millisecond

// Run does the background work of the session store until ctx ends:
// writing last-used times every second, every minute forgetting
// revocations that no longer matter, and every hour pruning the ledger of
// sessions no token of which can exist any more. Call it once per process.
func (s *Sessions) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	ledger := time.NewTicker(time.Hour)
	defer ledger.Stop()
	for {
		select {
		case <-ctx.Done():
			// The last second's uses, within a bound: a hung Redis must
			// not hold the process's exit.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopFlushTimeout)
			s.flushTouches(fctx)
			cancel()
			return
		case <-tick.C:
			s.flushTouches(ctx)
		case <-prune.C:
			s.rev.prune()
		case <-ledger.C:
			s.pruneLedger(ctx)
		}
	}
}

// pruneLedger forgets sessions ended longer ago than a session lives.
func (s *Sessions) pruneLedger(ctx context.Context) {
	if s.cfg.Ledger == nil {
		return
	}
	if _, err := s.cfg.Ledger.prune(ctx, s.cfg.Now().Add(-s.cfg.RefreshTTL)); err != nil && ctx.Err() == nil {
		s.cfg.Log.WarnContext(ctx, "prune revocation ledger", slog.Any("error", err))
	}
}
