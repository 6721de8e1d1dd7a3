package entdb

import (
	"database/sql"

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

// tracedOpen is sql.Open through otelsql. Rows and session resets make no
// spans of their own: a statement's span is what an operator reads.
func (o options) tracedOpen(dialectName string) func(driverName, dsn string) (*sql.DB, error) {
	system := "sqlite"
	if dialectName == dialect.Postgres {
		system = "postgresql"
	}
	return func(driverName, dsn string) (*sql.DB, error) {
		return otelsql.Open(driverName, dsn,
			otelsql.WithTracerProvider(o.tracer),
			otelsql.WithAttributes(attribute.String("db.system.name", system)),
			otelsql.WithSpanOptions(otelsql.SpanOptions{
				OmitRows:             true,
				OmitConnResetSession: true,
			}))
	}
}
