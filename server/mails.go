package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/authql/authql/auth/mail"
)

// listMails prints the latest mails the server sent or, without
// APP_SMTP_URL, wrote to its log: in development, the inbox of every
// account, with links that work.
//
//	server mails [-n N] [flags]
func listMails(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mails", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 10, "how many mails, latest first")
	// The other flags are the server's; only the database matters here.
	var rest []string
	for i := 0; i < len(args); i++ {
		if args[i] == "-n" || args[i] == "--n" {
			if i+1 < len(args) {
				if err := fs.Parse(args[i : i+2]); err != nil {
					return err
				}
				i++
			}
			continue
		}
		if strings.HasPrefix(args[i], "-n=") || strings.HasPrefix(args[i], "--n=") {
			if err := fs.Parse(args[i : i+1]); err != nil {
				return err
			}
			continue
		}
		rest = append(rest, args[i])
	}
	_, db, err := openDatabase(ctx, rest, getenv, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	sent, err := mail.Sent(ctx, db.Client, max(*n, 1))
	if err != nil {
		return fmt.Errorf("list mails: %w", err)
	}
	if len(sent) == 0 {
		fmt.Fprintln(stdout, "no mails yet")
		return nil
	}
	for i, m := range sent {
		if i > 0 {
			fmt.Fprintln(stdout, strings.Repeat("-", 72))
		}
		fmt.Fprintf(stdout, "Date:    %s\nTo:      %s\nSubject: %s\n\n", m.SentAt.Local().Format(time.RFC1123Z), m.To, m.Subject)
		if m.Text == "" {
			fmt.Fprintln(stdout, "(sent over SMTP: its text is not kept)")
			continue
		}
		fmt.Fprintln(stdout, m.Text)
	}
	return nil
}
