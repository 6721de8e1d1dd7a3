package entdb

import (
	"database/sql"
	"database/sql/driver"

	"entgo.io/ent/dialect"
	"github.com/XSAM/otelsql"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Option changes how Open opens the database.
type Option func(*options)

type options struct {
	tracer trace.TracerProvider
}

// WithTracing wraps the database/sql driver (github.com/XSAM/otelsql) so
// that every statement, transaction and new connection is a span of tp:
// the statement's text (with its placeholders, never the values bound to
// them), its duration and its error. Without it the driver is the plain
// one, at no cost.
func WithTracing(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracer = tp }
}

// openDB opens the pool on c: through otelsql when tracing is on. Rows
// and session resets make no spans of their own: a statement's span is
// what an operator reads.
func (o options) openDB(c driver.Connector, dialectName string) *sql.DB {
	if o.tracer == nil {
		return sql.OpenDB(c)
	}
	system := "sqlite"
	if dialectName == dialect.Postgres {
		system = "postgresql"
	}
	return otelsql.OpenDB(c,
		otelsql.WithTracerProvider(o.tracer),
		otelsql.WithAttributes(attribute.String("db.system.name", system)),
		otelsql.WithSpanOptions(otelsql.SpanOptions{
			OmitRows:             true,
			OmitConnResetSession: true,
		}))
}
