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

	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/entdb"
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
	db, err := entdb.Open(ctx, dsn, entdb.Pool{}, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	start := time.Now()
	ids := make([]*ent.User, 0, users)
	for i := 0; i < users; i += 500 {
		var b []*ent.UserCreate
		for j := i; j < min(users, i+500); j++ {
			b = append(b, db.Client.User.Create().SetEmail(fmt.Sprintf("author%d@bench.example", j)).
				SetName(fmt.Sprintf("Author %d", j)).SetPasswordHash("x"))
		}
		us, err := db.Client.User.CreateBulk(b...).Save(ctx)
		if err != nil {
			return err
		}
		ids = append(ids, us...)
	}
	base := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Microsecond)
	for i := 0; i < posts; i += 1000 {
		var b []*ent.PostCreate
		for j := i; j < min(posts, i+1000); j++ {
			at := base.Add(time.Duration(j) * time.Millisecond)
			b = append(b, db.Client.Post.Create().SetTitle(fmt.Sprintf("Post %d", j)).
				SetContent("Lorem ipsum dolor sit amet, consectetur adipiscing elit.").
				SetAuthorID(ids[j%users].ID).SetCreatedAt(at).SetUpdatedAt(at))
		}
		if err := db.Client.Post.CreateBulk(b...).Exec(ctx); err != nil {
			return err
		}
	}
	fmt.Printf("seeded %d users and %d posts in %v\n", users, posts, time.Since(start).Round(time.Millisecond))
	return nil
}
