// Package entdb opens the database behind the ent client: SQLite (pure Go,
// modernc.org/sqlite) for a file, PostgreSQL (pgx) for a postgres:// URL.
// It is written by hand; the rest of package ent is generated.
//
// It imports the generated ent client only. server opens the database with
// it, and graph recognises the database's unavailability (IsUnavailable).
package entdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite" // registers "sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/migrate"
)

// Pool configures the connection pool. Zero values take DefaultPool's.
type Pool struct {
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
	ConnMaxIdleTime time.Duration
}

// The pool's defaults (docs/OPERATIONS.md, "PostgreSQL", says why).
const (
	// connsPerCore and maxDefaultConns give DefaultMaxConns.
	connsPerCore    = 4
	maxDefaultConns = 32
	// DefaultMaxIdleTime closes a connection idle this long: a quiet
	// instance gives its connections back, a busy one keeps them.
	DefaultMaxIdleTime = 5 * time.Minute
	// sqliteMaxIdle is how many idle SQLite connections are kept. SQLite
	// connections cost no server and are not bounded.
	sqliteMaxIdle = 32
)

// DefaultMaxConns bounds PostgreSQL connections per instance: 4 per core
// the process runs on (GOMAXPROCS), at most 32. An instance keeps about
// that many statements usefully in flight; more connections only add
// backends that contend for the database's cores (measured: 8 against 32
// on 2 cores, 12% less PostgreSQL CPU per request), while a request
// waiting in the pool costs nothing and counts as away for admission. At
// 32, three instances stay under the server's default max_connections of
// 100.
func DefaultMaxConns() int {
	return min(connsPerCore*runtime.GOMAXPROCS(0), maxDefaultConns)
}

// withDefaults fills in what p leaves zero. Idle connections are kept up
// to the open bound: database/sql keeps 2 otherwise, and a steady load
// beyond them closes and opens connections (and, on PostgreSQL, their
// cached prepared statements) per request.
func (p Pool) withDefaults(dialect string) Pool {
	if p.MaxOpenConns == 0 && dialect == dialectPostgres {
		p.MaxOpenConns = DefaultMaxConns()
	}
	if p.MaxIdleConns == 0 {
		p.MaxIdleConns = sqliteMaxIdle
		if p.MaxOpenConns > 0 {
			p.MaxIdleConns = p.MaxOpenConns
		}
	}
	if p.ConnMaxIdleTime == 0 {
		p.ConnMaxIdleTime = DefaultMaxIdleTime
	}
	return p
}

const dialectPostgres = dialect.Postgres

// DB is an open database with its ent client.
type DB struct {
	Client  *ent.Client
	SQL     *sql.DB
	Dialect string
	// Describe is the database without credentials, for logs.
	Describe string
	opened   *atomic.Int64
}

// ConnectionsOpened is how many connections the pool has opened since
// Open: flat under a steady load once the pool is warm.
func (db *DB) ConnectionsOpened() int64 { return db.opened.Load() }

// Close closes the client and the pool.
func (db *DB) Close() error { return db.Client.Close() }

// Open opens the database named by dsn, in one of the forms Parse accepts.
// SQLite is opened with foreign keys on, WAL, a 5 s busy timeout and
// BEGIN IMMEDIATE transactions (so a write transaction never fails to
// upgrade its lock half-way). Drivers ignore what they do not understand,
// so these are given as modernc pragmas, not the mattn/cgo "_fk=1" syntax.
// The ent client does not open its own connections: the returned pool is the
// only one, and wrap may decorate its driver (e.g. to count statements).
func Open(ctx context.Context, dsn string, pool Pool, wrap func(dialect.Driver) dialect.Driver, opts ...Option) (*DB, error) {
	src, err := Parse(dsn)
	if err != nil {
		return nil, err
	}
	opened := &atomic.Int64{}
	var conn driver.Connector
	switch src.Dialect {
	case dialect.Postgres:
		conn, err = pgConnector(dsn)
	default:
		if dir := filepath.Dir(src.path); dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("create database directory: %w", err)
			}
		}
		conn = stmtCacheConnector{dsnConnector{drv: &sqlite.Driver{}, dsn: "file:" + src.path +
			"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(" + src.busyMillis + ")" +
			"&_pragma=synchronous(NORMAL)&_txlock=immediate"}}
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", src.Describe, err)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	db := o.openDB(countingConnector{conn, opened}, src.Dialect)
	pool = pool.withDefaults(src.Dialect)
	db.SetMaxOpenConns(pool.MaxOpenConns)
	db.SetMaxIdleConns(pool.MaxIdleConns)
	db.SetConnMaxLifetime(pool.ConnMaxLifetime)
	db.SetConnMaxIdleTime(pool.ConnMaxIdleTime)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect to %s: %w", src.Describe, err)
	}
	if src.Dialect == dialect.SQLite {
		if err := checkForeignKeys(pctx, db); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	var drv dialect.Driver = entsql.OpenDB(src.Dialect, db)
	if wrap != nil {
		drv = wrap(drv)
	}
	return &DB{Client: ent.NewClient(ent.Driver(drv)), SQL: db, Dialect: src.Dialect, Describe: src.Describe, opened: opened}, nil
}

// pgConnector opens PostgreSQL connections that outlive a cancelled
// statement. pgx's default answers a context cancelled mid-statement (a
// client that went away) by breaking the connection, so every aborted
// request cost the pool a connection and the next request a new one. Here
// a statement still running pgCancelDelay later is cancelled on the server
// instead, and the connection returns to the pool; the deadline on the
// socket stays as a last resort.
func pgConnector(dsn string) (driver.Connector, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, CancelRequestDelay: pgCancelDelay, DeadlineDelay: pgCancelDeadline}
	}
	return pgxConnector{stdlib.GetConnector(*cfg)}, nil
}

// pgxConnector hands database/sql pgx connections that a request which
// went away does not cost. pgx refuses a statement whose context has
// already ended with an error it calls safe to retry, which its
// database/sql adapter reports as driver.ErrBadConn; database/sql then
// closes the connection, sound as it is, and the pool opens another for
// the next request: under load, each client that hangs up as its request
// reaches the database.
type pgxConnector struct{ driver.Connector }

func (c pgxConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if pc, ok := conn.(*stdlib.Conn); ok {
		return pgxConn{pc}, nil
	}
	return conn, nil
}

// pgxConn is pgx's connection for database/sql that answers a statement
// or session reset refused for an ended context with the context's error
// when the connection itself is sound, so that database/sql keeps it. It
// also tells database/sql whether it is sound (driver.Validator), so a
// connection is only pooled again when it is.
type pgxConn struct{ *stdlib.Conn }

var _ interface {
	driver.QueryerContext
	driver.ExecerContext
	driver.SessionResetter
	driver.Validator
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.Pinger
	driver.NamedValueChecker
} = pgxConn{}

func (c pgxConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.Conn.QueryContext(ctx, query, args)
	return rows, c.ended(ctx, err)
}

func (c pgxConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := c.Conn.ExecContext(ctx, query, args)
	return res, c.ended(ctx, err)
}

// ResetSession runs as a pooled connection is taken; it pings one idle
// for more than a second. A transaction left open still discards it.
func (c pgxConn) ResetSession(ctx context.Context) error {
	err := c.Conn.ResetSession(ctx)
	if err != nil && c.Conn.Conn().PgConn().TxStatus() != 'I' {
		return err
	}
	return c.ended(ctx, err)
}

// BeginTx begins a transaction whose rollback keeps the connection when
// the context has ended. pgx breaks the connection on a "begin" or a
// "rollback" it could not send for an ended context; database/sql rolls a
// transaction back as soon as its context ends.
func (c pgxConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tx, err := c.Conn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return pgxTx{Tx: tx, conn: c.Conn.Conn(), ctx: ctx}, nil
}

// pgxTx is a transaction that rolls back on a context of its own, bounded
// by pgCancelDeadline: the one it began with may have ended.
type pgxTx struct {
	driver.Tx
	conn *pgx.Conn
	ctx  context.Context
}

func (t pgxTx) Rollback() error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), pgCancelDeadline)
	defer cancel()
	if _, err := t.conn.Exec(ctx, "rollback"); err != nil {
		// The transaction's state is unknown: the connection is not reused.
		_ = t.conn.Close(ctx)
		return err
	}
	return nil
}

// IsValid implements driver.Validator: the connection is open and no
// statement is half read.
func (c pgxConn) IsValid() bool {
	pc := c.Conn.Conn().PgConn()
	return !pc.IsClosed() && !pc.IsBusy()
}

// ended returns ctx's error for driver.ErrBadConn when ctx has ended and
// the connection is sound: nothing reached the server, or what did was
// answered in full.
func (c pgxConn) ended(ctx context.Context, err error) error {
	if errors.Is(err, driver.ErrBadConn) && ctx.Err() != nil && c.IsValid() {
		return ctx.Err()
	}
	return err
}

// pgCancelDelay is how long a statement whose context ended may go on
// before the server is asked to cancel it. Nearly every statement ends
// sooner, and then no cancel request is sent: each costs the server a
// process, and holds the connection 100 ms more (pgx waits so that the
// request cannot cancel the connection's next statement). Were it sent at
// once, a client sending requests and hanging up would hold a pooled
// connection for 100 ms with each.
const pgCancelDelay = 50 * time.Millisecond

// pgCancelDeadline is how long a cancelled statement may take to end
// before its connection is broken after all.
const pgCancelDeadline = 5 * time.Second

// dsnConnector opens connections of a driver that has no connector of
// its own (modernc's).
type dsnConnector struct {
	drv driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

// countingConnector counts the connections a pool opens.
type countingConnector struct {
	driver.Connector
	opened *atomic.Int64
}

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err == nil {
		c.opened.Add(1)
	}
	return conn, err
}

// Source is a data source name that Parse accepted.
type Source struct {
	// Dialect is dialect.Postgres or dialect.SQLite.
	Dialect string
	// Describe names the database without credentials, for logs.
	Describe string

	path, busyMillis string // SQLite only
}

// Forms lists the data source names Open accepts, for error messages.
const Forms = "postgres://USER:PASS@HOST:5432/DB?sslmode=... (or postgresql://), " +
	"sqlite:PATH, sqlite://PATH, file:PATH (each with an optional ?busy_timeout=MS), or a bare file path"

var (
	// schemeRe matches a leading URL scheme (RFC 3986 §3.1) and its colon.
	schemeRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	// keywordRe matches the start of a libpq keyword/value string
	// ("host=db user=app"), which would otherwise be taken for a file name.
	keywordRe = regexp.MustCompile(`^\s*[A-Za-z_]+\s*=`)
)

// Parse checks dsn without opening, creating or connecting to anything, and
// says what is wrong with it. The accepted forms:
//
//	postgres://user:pass@host:5432/db?sslmode=disable   PostgreSQL through pgx
//	postgresql://...                                     the same
//	sqlite:path/to/app.db, sqlite://path, file:path      SQLite file (?busy_timeout=ms, default 5000)
//	path/to/app.db                                       SQLite file
//
// Anything else with a scheme (mysql://..., redis:..., a bare path whose
// first segment ends in a colon) is refused rather than taken for a file
// name: a file named after a URL would be created, and the server would
// start on an empty database. A file whose name has a colon in its first
// segment is still reachable as sqlite:PATH.
func Parse(dsn string) (Source, error) {
	if strings.TrimSpace(dsn) == "" {
		return Source{}, errors.New("empty database name; accepted forms: " + Forms)
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		// ParseConfig reads no network; it refuses a bad port, sslmode or
		// escape, and its errors never carry the password.
		if _, err := pgconn.ParseConfig(dsn); err != nil {
			return Source{}, fmt.Errorf("invalid PostgreSQL URL: %w", err)
		}
		return Source{Dialect: dialect.Postgres, Describe: redactURL(dsn)}, nil
	}
	rest, scheme := dsn, ""
	for _, p := range []string{"sqlite://", "sqlite:", "file:"} {
		if r, ok := strings.CutPrefix(dsn, p); ok {
			rest, scheme = r, p
			break
		}
	}
	if scheme == "" {
		if m := schemeRe.FindString(dsn); m != "" || strings.Contains(dsn, "://") {
			return Source{}, fmt.Errorf("unknown scheme %q: accepted forms: %s", strings.TrimSuffix(m, ":"), Forms)
		}
		if keywordRe.MatchString(dsn) {
			return Source{}, errors.New("a keyword/value connection string is not accepted: use a postgres:// URL")
		}
	}
	path, busy, err := sqlitePath(rest)
	if err != nil {
		return Source{}, err
	}
	return Source{Dialect: dialect.SQLite, Describe: "sqlite:" + path, path: path, busyMillis: busy}, nil
}

// sqlitePath splits a SQLite DSN without its scheme into the file path and
// the busy timeout in milliseconds (?busy_timeout=N, default 5000): how
// long a write waits for another writer before failing as unavailable.
// Other parameters are refused: they would be silently dropped.
func sqlitePath(dsn string) (path, busyMillis string, err error) {
	path, query, _ := strings.Cut(dsn, "?")
	if path == "" {
		return "", "", errors.New("SQLite: the file path is empty")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", "", fmt.Errorf("SQLite: parameters: %w", err)
	}
	busyMillis = "5000"
	for k, v := range q {
		if k != "busy_timeout" {
			return "", "", fmt.Errorf("SQLite: unknown parameter %q (only busy_timeout is understood)", k)
		}
		n, err := strconv.Atoi(v[len(v)-1])
		if err != nil || n < 0 {
			return "", "", fmt.Errorf("SQLite: busy_timeout must be a number of milliseconds, not %q", v[len(v)-1])
		}
		busyMillis = strconv.Itoa(n)
	}
	return path, busyMillis, nil
}

func checkForeignKeys(ctx context.Context, db *sql.DB) error {
	var on int
	if err := db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&on); err != nil {
		return fmt.Errorf("check sqlite foreign keys: %w", err)
	}
	if on != 1 {
		return errors.New("sqlite foreign keys are off; the driver ignored the pragma")
	}
	return nil
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "postgres"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

// migrationLock is the PostgreSQL advisory lock key held while migrating, so
// instances starting at the same moment migrate one after another.
const migrationLock = 0x617574686d6967 // "authmig"

// OpenMigrated opens the database and brings its schema up to date.
func OpenMigrated(ctx context.Context, dsn string, pool Pool, wrap func(dialect.Driver) dialect.Driver) (*DB, error) {
	db, err := Open(ctx, dsn, pool, wrap)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// migrateMu serialises migrations within a process: ent's migrator mutates
// the package-level table descriptions of ent/migrate while it runs, so two
// clients migrating at once (two server instances in one test binary) would
// race on them.
var migrateMu sync.Mutex

// Migrate creates or updates the schema. On PostgreSQL it holds an advisory
// lock for the duration, so it is safe to run from several instances at once.
func (db *DB) Migrate(ctx context.Context) error {
	migrateMu.Lock()
	defer migrateMu.Unlock()
	if db.Dialect != dialect.Postgres {
		return db.Client.Schema.Create(ctx)
	}
	conn, err := db.SQL.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("migrate: take lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock) //nolint:errcheck // the lock also ends with the connection
	// The migration runs on the connection holding the lock: on another
	// one from the pool it would wait forever with a pool of one.
	if err := migrate.NewSchema(connDriver{entsql.Conn{ExecQuerier: conn}, conn}).Create(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// connDriver is an ent driver on one PostgreSQL connection, its
// transactions included.
type connDriver struct {
	entsql.Conn
	conn *sql.Conn
}

func (connDriver) Dialect() string { return dialect.Postgres }
func (connDriver) Close() error    { return nil }

func (d connDriver) Tx(ctx context.Context) (dialect.Tx, error) {
	tx, err := d.conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &entsql.Tx{Conn: entsql.Conn{ExecQuerier: tx}, Tx: tx}, nil
}

// IsUnavailable reports whether err means the database could not be
// reached or is busy (locked, restarting, out of connections) rather than
// that the statement was wrong: a client should retry later
// (SERVICE_UNAVAILABLE), and nothing was written. A closed pool is not
// unavailability but a bug, and is not reported as one.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var (
		se *sqlite.Error
		ce *pgconn.ConnectError
		pe *pgconn.PgError
		ne net.Error
	)
	switch {
	case errors.As(err, &se):
		code := se.Code() & 0xff // primary result code
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	case errors.As(err, &ce):
		return true
	case errors.As(err, &pe):
		// 08: connection exception; 57P0x: shutting down; 53300: too many connections.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P0") || pe.Code == "53300"
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, pgconn.ErrConnClosed):
		return true
	}
	return pgconn.Timeout(err) || pgconn.SafeToRetry(err)
}
