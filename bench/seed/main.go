// Command seed fills a database for the load benchmarks: users, each with
// posts, written in bulk straight through ent (the benchmarks measure reads).
//
//	go run ./bench/seed -database-url sqlite:/tmp/bench.db -users 100 -posts 1000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/authql/authql/ent/entdb"
	"github.com/authql/authql/ent/entdb/entdbtest"
)

func main() {
	dsn := flag.String("database-url", "", "database to fill (created and migrated if needed)")
	users := flag.Int("users", 100, "authors")
	posts := flag.Int("posts", 1000, "posts in all, spread over the authors")
	flag.Parse()
	if err := run(context.Background(), *dsn, *users, *posts); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dsn string, users, posts int) error {
	db, err := entdb.OpenMigrated(ctx, dsn, entdb.Pool{}, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	if _, err := entdbtest.Seed(ctx, db.Client, users, posts); err != nil {
		return err
	}
	fmt.Printf("seeded %d users and %d posts in %v\n", users, posts, time.Since(start).Round(time.Millisecond))
	return nil
}
