// Package ent holds the generated ent client. Only schema/, template/ and
// entc.go are written by hand.
package ent

//go:generate go run entc.go
