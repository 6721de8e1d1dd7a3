package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// The log streams (the design's auth, API, error and performance logs). A
// record belongs to a stream by its "stream" attribute, usually attached
// with Logger.With; records without one are the application's own
// (start-up, shutdown, background work).
const (
	streamAuth  = "auth"  // sign-ins, refreshes, reuse detections, logouts, revocations, rate limits
	streamAPI   = "api"   // one line per GraphQL operation
	streamError = "error" // internal errors, with the request id
	streamPerf  = "perf"  // operations slower than APP_SLOW_THRESHOLD
)

// newLogger returns the process logger: JSON in production, text in
// development. Every record logged with a request's context carries its
// request id. With cfg.LogDir, each stream goes to its own file there
// (auth.log, api.log, error.log, perf.log, and app.log for the rest)
// instead of w. The returned func closes the files.
func newLogger(cfg Config, w io.Writer) (*slog.Logger, func(), error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	format := func(w io.Writer) slog.Handler {
		if cfg.LogFormat == "json" {
			return slog.NewJSONHandler(w, opts)
		}
		return slog.NewTextHandler(w, opts)
	}
	if cfg.LogDir == "" {
		return slog.New(requestIDHandler{format(w)}), func() {}, nil
	}
	if err := os.MkdirAll(cfg.LogDir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("create log directory: %w", err)
	}
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	open := func(name string) (slog.Handler, error) {
		// O_APPEND: several processes may share a directory, and logrotate's
		// copytruncate keeps working.
		f, err := os.OpenFile(filepath.Join(cfg.LogDir, name+".log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("open log file: %w", err)
		}
		files = append(files, f)
		return format(f), nil
	}
	r := &streamRouter{streams: map[string]slog.Handler{}}
	var err error
	for _, name := range []string{streamAuth, streamAPI, streamError, streamPerf} {
		if r.streams[name], err = open(name); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	if r.app, err = open("app"); err != nil {
		closeAll()
		return nil, nil, err
	}
	return slog.New(requestIDHandler{r}), closeAll, nil
}

// streamRouter sends each record to the handler of its stream, or to app.
// The stream is known as soon as a logger gets a "stream" attribute
// (Logger.With), and from then on the stream's own handler is used; a
// record may also carry the attribute itself. Attributes and groups added
// before the stream was known are replayed on the chosen handler.
type streamRouter struct {
	streams map[string]slog.Handler
	app     slog.Handler
	pending []func(slog.Handler) slog.Handler
	// grouped: a group is open, so a "stream" attribute from now on is
	// nested, not the record's stream.
	grouped bool
}

func (r *streamRouter) Enabled(ctx context.Context, l slog.Level) bool {
	return r.app.Enabled(ctx, l) // every stream has the same level
}

func (r *streamRouter) Handle(ctx context.Context, rec slog.Record) error {
	h := r.app
	if !r.grouped {
		rec.Attrs(func(a slog.Attr) bool {
			if a.Key != "stream" {
				return true
			}
			if s, ok := r.streams[a.Value.Resolve().String()]; ok {
				h = s
			}
			return false
		})
	}
	return r.replay(h).Handle(ctx, rec)
}

func (r *streamRouter) WithAttrs(attrs []slog.Attr) slog.Handler {
	if !r.grouped {
		for _, a := range attrs {
			if a.Key != "stream" {
				continue
			}
			if s, ok := r.streams[a.Value.Resolve().String()]; ok {
				return r.replay(s).WithAttrs(attrs)
			}
		}
	}
	return r.with(func(h slog.Handler) slog.Handler { return h.WithAttrs(attrs) })
}

func (r *streamRouter) WithGroup(name string) slog.Handler {
	c := r.with(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
	c.grouped = true
	return c
}

// with returns a copy of r that applies f to the stream handler it picks.
func (r *streamRouter) with(f func(slog.Handler) slog.Handler) *streamRouter {
	c := *r
	c.pending = append(r.pending[:len(r.pending):len(r.pending)], f)
	return &c
}

func (r *streamRouter) replay(h slog.Handler) slog.Handler {
	for _, f := range r.pending {
		h = f(h)
	}
	return h
}

// redisLogger routes go-redis's own messages (failed dials, reconnecting
// pools and subscriptions) into the process logger at WARN, so that every
// line the process writes has its format: one JSON object per line in
// production. go-redis keeps one logger per process, a package variable
// set by redis.SetLogger; run sets it once, at start-up. That is the one
// exception to "no package-level state", and a harmless one: a process
// runs one server, whose clients would all want this logger anyway.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	msg := strings.TrimPrefix(strings.TrimSpace(fmt.Sprintf(format, v...)), "redis: ")
	// go-redis says through this one logger both what went wrong (a failed
	// dial, a lost connection) and what merely happened (Sentinel naming
	// the master it found): only the former is a warning.
	level := slog.LevelInfo
	if strings.Contains(msg, "fail") || strings.Contains(msg, "error") || strings.Contains(msg, "err=") ||
		strings.Contains(msg, "timeout") || strings.Contains(msg, "refused") || strings.Contains(msg, "discard") {
		level = slog.LevelWarn
	}
	l.log.Log(ctx, level, "go-redis: "+msg)
}

type requestIDKey struct{}

// requestIDFrom returns the id of the request ctx belongs to, or "".
func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// requestIDHandler adds the request id of the record's context and, when
// the request is traced, its trace id: the id Jaeger (or any OpenTelemetry
// backend) finds the request's trace by.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := requestIDFrom(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// safeRequestID accepts a caller's X-Request-ID only if it is short and
// plain, so it cannot forge log lines.
var safeRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// withRequestID gives each request an id (the caller's X-Request-ID if it is
// safe, else a new one), echoes it in the response and puts it in the
// context for every log line of the request.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !safeRequestID.MatchString(id) {
			id = strings.ToLower(rand.Text()[:20])
		}
		w.Header().Set("X-Request-ID", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}
