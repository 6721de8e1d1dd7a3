package graph

import (
	"context"
	"fmt"

	"github.com/authql/authql/ent"
)

// withTx runs fn in a database transaction: commit if fn returns nil,
// roll back otherwise (and on panic). Every mutation that writes goes
// through it, so a failure half-way never leaves a half-written row. Work
// that is not SQL but must succeed for the write to stand (starting a
// session in Redis) runs inside fn too.
func withTx(ctx context.Context, client *ent.Client, fn func(tx *ent.Client) error) (err error) {
	tx, err := client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx.Client()); err != nil {
		if rerr := tx.Rollback(); rerr != nil {
			return fmt.Errorf("%w (rollback: %v)", err, rerr)
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
