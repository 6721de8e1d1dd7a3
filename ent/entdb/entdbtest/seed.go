package entdbtest

import (
	"context"
	"fmt"
	"time"

	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/schema/pulid"
)

// Seed writes users and posts straight through ent, in bulk, for tests and
// benchmarks of reads: users named "Author i" (seed<i>@example.com, no
// usable password), and posts "post j" spread over them in turn, one
// millisecond apart (post 0 the oldest, an hour ago). It returns the user
// ids in order.
func Seed(ctx context.Context, client *ent.Client, users, posts int) ([]pulid.ID, error) {
	ids := make([]pulid.ID, 0, users)
	for i := 0; i < users; i += 500 {
		var b []*ent.UserCreate
		for j := i; j < min(users, i+500); j++ {
			b = append(b, client.User.Create().SetEmail(fmt.Sprintf("seed%d@example.com", j)).
				SetName(fmt.Sprintf("Author %d", j)).SetPasswordHash("x"))
		}
		us, err := client.User.CreateBulk(b...).Save(ctx)
		if err != nil {
			return nil, fmt.Errorf("seed users: %w", err)
		}
		for _, u := range us {
			ids = append(ids, u.ID)
		}
	}
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	for i := 0; i < posts; i += 1000 {
		var b []*ent.PostCreate
		for j := i; j < min(posts, i+1000); j++ {
			at := base.Add(time.Duration(j) * time.Millisecond)
			b = append(b, client.Post.Create().SetTitle(fmt.Sprintf("post %d", j)).SetContent("body").
				SetAuthorID(ids[j%users]).SetCreatedAt(at).SetUpdatedAt(at))
		}
		if err := client.Post.CreateBulk(b...).Exec(ctx); err != nil {
			return nil, fmt.Errorf("seed posts: %w", err)
		}
	}
	return ids, nil
}
