package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/authql/authql/auth"
	"github.com/authql/authql/cache"
	"github.com/authql/authql/cache/rdb"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/entdb"
	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/ent/user"
)

// promoteAdmin makes an existing account an ADMIN. Creating the first admin
// is an operator's act on the server, never an API call.
//
//	server promote-admin [flags] EMAIL
func promoteAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return setRole(ctx, "promote-admin", user.RoleADMIN, args, getenv, stdout, stderr)
}

// demoteAdmin makes an ADMIN an ordinary USER again.
//
//	server demote-admin [flags] EMAIL
func demoteAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return setRole(ctx, "demote-admin", user.RoleUSER, args, getenv, stdout, stderr)
}

// setRole gives an existing account a role. Roles are read from the
// database on every request, never from a cache, and cached responses that
// depend on the viewer's role are keyed by it, so the change counts at once
// whatever else happens. With a shared Redis configured, the users
// generation moves too, as on any user write: every cached response built
// before it becomes unreachable.
func setRole(ctx context.Context, cmd string, role user.Role, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var email string
	if n := len(args); n > 0 {
		email, args = args[n-1], args[:n-1]
	}
	if email == "" || email[0] == '-' {
		return fmt.Errorf("usage: server %s [flags] EMAIL", cmd)
	}
	email = auth.NormalizeEmail(email)
	// Only the database and Redis settings matter here; the server's own
	// start-up is what reports misspelled ones (no environment list).
	cfg, db, err := openDatabase(ctx, args, getenv, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	u, err := db.Client.User.Query().Where(user.Email(email)).Only(ctx)
	if ent.IsNotFound(err) {
		return fmt.Errorf("no account with e-mail %s: register it first", email)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", cmd, email, err)
	}
	if err := u.Update().SetRole(role).Exec(ctx); err != nil {
		return fmt.Errorf("%s %s: %w", cmd, email, err)
	}
	if !cfg.EmbeddedRedis() || cfg.CacheRedisURL != "" {
		if err := forgetUser(ctx, cfg, u.ID); err != nil {
			return fmt.Errorf("%s %s: the role is changed, but cached copies could not be invalidated (they expire within %v): %w", cmd, email, cfg.Cache.UserTTL, err)
		}
	}
	fmt.Fprintf(stdout, "%s is now %s\n", email, map[user.Role]string{user.RoleADMIN: "an ADMIN", user.RoleUSER: "a USER"}[role])
	return nil
}

// forgetUser invalidates what the shared caches hold of a user, and every
// response cached under the current users generation: in the cache tiers'
// Redis (Config.cacheRedis), as the server does.
func forgetUser(ctx context.Context, cfg Config, id pulid.ID) error {
	client, err := rdb.Open(ctx, cfg.cacheRedis())
	if err != nil {
		return err
	}
	defer client.Close()
	tc := cfg.Cache
	tc.Prefix = cfg.RedisPrefix
	return cache.NewTiers(client, nil, tc).InvalidateUsers(ctx, string(id))
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

// openDatabase reads the settings of a subcommand (args and the
// environment) and opens, migrated, the database they name. The server's
// own start-up is what reports misspelled settings (no environment list).
func openDatabase(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) (Config, *entdb.DB, error) {
	cfg, err := loadConfig(args, getenv, func() []string { return nil }, stderr)
	if err != nil {
		return cfg, nil, err
	}
	dsn := cfg.DatabaseURL
	if dsn == "" {
		dsn = DefaultSQLitePath
	}
	db, err := entdb.OpenMigrated(ctx, dsn, entdb.Pool{}, nil)
	return cfg, db, err
}
