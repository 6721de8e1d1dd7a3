package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/ent/entdb"
	"github.com/authql/authql/ent/user"
)

// promoteAdmin makes an existing account an ADMIN. Creating the first admin
// is an operator's act on the server, never an API call.
//
//	server promote-admin [flags] EMAIL
func promoteAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var email string
	if n := len(args); n > 0 {
		email, args = args[n-1], args[:n-1]
	}
	if email == "" || email[0] == '-' {
		return errors.New("usage: server promote-admin [flags] EMAIL")
	}
	cfg, err := loadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	dsn := cfg.DatabaseURL
	if dsn == "" {
		dsn = DefaultSQLitePath
	}
	db, err := entdb.OpenMigrated(ctx, dsn, entdb.Pool{}, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := db.Client.User.Update().
		Where(user.Email(auth.NormalizeEmail(email))).
		SetRole(user.RoleADMIN).
		Save(ctx)
	if err != nil {
		return fmt.Errorf("promote %s: %w", email, err)
	}
	if n == 0 {
		return fmt.Errorf("no account with e-mail %s: register it first", auth.NormalizeEmail(email))
	}
	fmt.Fprintf(stdout, "%s is now an ADMIN\n", auth.NormalizeEmail(email))
	return nil
}

// genKey prints a new Ed25519 seed (for APP_JWT_ED25519_KEY) and its public
// key (for APP_JWT_ED25519_VERIFY_KEYS during a later rotation).
func genKey(stdout io.Writer) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "APP_JWT_ED25519_KEY=%s\n# public key: %s\n",
		base64.StdEncoding.EncodeToString(priv.Seed()), base64.StdEncoding.EncodeToString(pub))
	return nil
}

// genSecret prints a new HS256 secret: 32 random bytes, base64, the form
// production requires.
func genSecret(stdout io.Writer) error {
	b := make([]byte, minSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "APP_JWT_SECRET=%s\n", base64.StdEncoding.EncodeToString(b))
	return nil
}
