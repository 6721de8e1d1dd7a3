package entdb

import (
	"context"
	"os"
	"strings"
	"testing"

	"entgo.io/ent/dialect"
)

func TestParse(t *testing.T) {
	tests := []struct {
		dsn      string
		dialect  string // "" when refused
		describe string
		want     string // what the refusal must say
	}{
		{dsn: "postgres://app:s3cret@db:5432/app?sslmode=disable", dialect: dialect.Postgres, describe: "postgres://app@db:5432/app?sslmode=disable"},
		{dsn: "postgresql://db/app", dialect: dialect.Postgres, describe: "postgresql://db/app"},
		{dsn: "sqlite:data/app.db", dialect: dialect.SQLite, describe: "sqlite:data/app.db"},
		{dsn: "sqlite:///var/lib/app.db?busy_timeout=200", dialect: dialect.SQLite, describe: "sqlite:/var/lib/app.db"},
		{dsn: "file:app.db", dialect: dialect.SQLite, describe: "sqlite:app.db"},
		{dsn: "./data/app.db", dialect: dialect.SQLite, describe: "sqlite:./data/app.db"},
		{dsn: "/var/lib/authql/app.db", dialect: dialect.SQLite, describe: "sqlite:/var/lib/authql/app.db"},
		{dsn: "sqlite:odd:name.db", dialect: dialect.SQLite, describe: "sqlite:odd:name.db"},

		{dsn: "mysql://root@127.0.0.1/x", want: `unknown scheme "mysql"`},
		{dsn: "MySQL://root@127.0.0.1/x", want: "postgres://"},
		{dsn: "redis://127.0.0.1:6379", want: "sqlite:PATH"},
		{dsn: "mysql:root@tcp(127.0.0.1)/x", want: `unknown scheme "mysql"`},
		{dsn: "./dir/x://y", want: "unknown scheme"},
		{dsn: "host=db user=app dbname=app", want: "keyword/value"},
		{dsn: "postgres://db:99999/app", want: "invalid PostgreSQL URL"},
		{dsn: "postgres://app:s3cret@db/app?sslmode=sometimes", want: "invalid PostgreSQL URL"},
		{dsn: "sqlite:", want: "path is empty"},
		{dsn: "sqlite:app.db?mode=ro", want: `unknown parameter "mode"`},
		{dsn: "sqlite:app.db?busy_timeout=soon", want: "busy_timeout"},
		{dsn: "  ", want: "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.dsn, func(t *testing.T) {
			src, err := Parse(tc.dsn)
			if tc.dialect == "" {
				if err == nil {
					t.Fatalf("accepted as %+v", src)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q does not say %q", err, tc.want)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if got, want := src.Dialect, tc.dialect; got != want {
				t.Errorf("dialect=%q, want %q", got, want)
			}
			if got, want := src.Describe, tc.describe; got != want {
				t.Errorf("describe=%q, want %q", got, want)
			}
		})
	}
}

// A DSN of another database is refused before anything is created: it used
// to be taken for a file path, creating the directory tree "mysql:/root@..."
// and an empty SQLite database in it.
func TestOpenRefusesUnknownScheme(t *testing.T) {
	t.Chdir(t.TempDir())
	db, err := Open(context.Background(), "mysql://root@127.0.0.1/x", Pool{}, nil)
	if err == nil {
		db.Close()
		t.Fatal("opened")
	}
	if !strings.Contains(err.Error(), "unknown scheme") {
		t.Errorf("error %q does not say the scheme is unknown", err)
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("created %q", e.Name())
	}
}
