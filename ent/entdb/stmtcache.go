package entdb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
)

// stmtCacheSize bounds the statements a connection keeps prepared. The
// product issues a few dozen distinct statements (ent builds each query's
// text from its shape, not its values); beyond the bound the oldest is
// finalized.
const stmtCacheSize = 128

// stmtCacheConnector gives every SQLite connection a cache of prepared
// statements, as pgx keeps for PostgreSQL: modernc's driver otherwise
// parses and plans each query's text anew on every call, which costs as
// much as running a small query.
type stmtCacheConnector struct{ driver.Connector }

func (c stmtCacheConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	base, ok := conn.(sqliteConn)
	if !ok {
		return conn, nil
	}
	return &stmtCacheConn{sqliteConn: base, stmts: map[string]*cachedStmt{}}, nil
}

// sqliteConn is what database/sql uses of a modernc connection.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// stmtCacheConn is a connection whose queries and statements run through
// prepared statements kept by their text. database/sql hands a connection
// to one goroutine at a time; a statement still being read (its rows open,
// as within a transaction that queries again before it closes them) is
// never reused until its rows close: the second caller gets a statement of
// its own.
type stmtCacheConn struct {
	sqliteConn
	stmts map[string]*cachedStmt
	order []string // insertion order, oldest first, for eviction
}

// sqliteStmt is what the cache uses of a modernc statement.
type sqliteStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

type cachedStmt struct {
	stmt sqliteStmt
	busy bool // its rows are open
}

// stmt returns the cached statement for query, preparing it on first use;
// nil, nil when it is busy (the caller then runs the query the driver's
// own way).
func (c *stmtCacheConn) stmt(ctx context.Context, query string) (*cachedStmt, error) {
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			return nil, nil
		}
		return s, nil
	}
	ds, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	st, ok := ds.(sqliteStmt)
	if !ok {
		_ = ds.Close()
		return nil, fmt.Errorf("a %T cannot run with a context", ds)
	}
	if len(c.order) >= stmtCacheSize {
		c.evict()
	}
	s := &cachedStmt{stmt: st}
	c.stmts[query] = s
	c.order = append(c.order, query)
	return s, nil
}

// evict finalizes the oldest statement not in use.
func (c *stmtCacheConn) evict() {
	for i, q := range c.order {
		s := c.stmts[q]
		if s.busy {
			continue
		}
		_ = s.stmt.Close()
		delete(c.stmts, q)
		c.order = append(c.order[:i], c.order[i+1:]...)
		return
	}
}

func (c *stmtCacheConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.sqliteConn.QueryContext(ctx, query, args)
	}
	rows, err := s.stmt.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	sr, ok := rows.(sqliteRows)
	if !ok {
		_ = rows.Close()
		return nil, fmt.Errorf("%T do not say their column types", rows)
	}
	s.busy = true
	return &cachedRows{sqliteRows: sr, s: s}, nil
}

func (c *stmtCacheConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.sqliteConn.ExecContext(ctx, query, args)
	}
	return s.stmt.ExecContext(ctx, args)
}

// Close finalizes the cached statements, then closes the connection.
func (c *stmtCacheConn) Close() error {
	var errs []error
	for _, s := range c.stmts {
		errs = append(errs, s.stmt.Close())
	}
	c.stmts, c.order = nil, nil
	return errors.Join(append(errs, c.sqliteConn.Close())...)
}

// sqliteRows is what database/sql uses of modernc's rows: the rows and
// what they say of their columns.
type sqliteRows interface {
	driver.Rows
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeLength
	driver.RowsColumnTypeNullable
	driver.RowsColumnTypePrecisionScale
	driver.RowsColumnTypeScanType
}

// cachedRows are a cached statement's rows; closing them frees the
// statement for the next query.
type cachedRows struct {
	sqliteRows
	s *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.sqliteRows.Close()
	r.s.busy = false
	return err
}
