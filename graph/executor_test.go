package graph

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// objectJSON writes exactly what gqlgen's FieldSet writes: fields in
// order, a repeated alias once (its first value), small and large
// selections alike.
func TestObjectJSONWritesWhatFieldSetWrites(t *testing.T) {
	for _, aliases := range [][]string{
		{},
		{"id"},
		{"id", "title", "author"},
		{"id", "id", "title", "id"},
		strings.Fields(strings.Repeat("a b c d e f g h i j ", 5)), // 50: gqlgen's own path
	} {
		fields := make([]graphql.CollectedField, len(aliases))
		for i, a := range aliases {
			fields[i] = graphql.CollectedField{Field: &ast.Field{Alias: a, Name: a}}
		}
		set := graphql.NewFieldSet(fields)
		for i := range aliases {
			set.Values[i] = graphql.MarshalInt(i)
		}
		var want, got bytes.Buffer
		set.MarshalGQL(&want)
		(&objectJSON{set, fields}).MarshalGQL(&got)
		if got.String() != want.String() {
			t.Errorf("%d fields: wrote %s, want %s", len(aliases), got.String(), want.String())
		}
	}
}

// writeResponse writes what json.Marshal writes for a response (the same
// members, in the same order), data as the executor wrote it.
func TestWriteResponseMatchesJSONMarshal(t *testing.T) {
	yes := true
	for i, r := range []*graphql.Response{
		{Data: json.RawMessage(`{"posts":{"edges":[{"node":{"id":"p1","title":"<b>&</b>"}}]}}`)},
		{Data: json.RawMessage(`null`), Errors: gqlerror.List{{Message: "not found", Path: ast.Path{ast.PathName("post")},
			Extensions: map[string]any{"code": "NOT_FOUND"}}}},
		{Data: json.RawMessage(`{"me":null}`), Extensions: map[string]any{"cost": map[string]any{"sqlStatements": 1}}},
		{Errors: gqlerror.List{{Message: "bad"}}},
		{Data: json.RawMessage(`{"a":1}`), HasNext: &yes, Path: ast.Path{ast.PathName("a")}, Label: "l"},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		writeResponse(&got, r)
		var w, g any
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got.Bytes(), &g); err != nil {
			t.Fatalf("response %d: %s is not JSON: %v", i, got.Bytes(), err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("response %d: wrote %s, want %s", i, got.Bytes(), want)
		}
		if order := func(b []byte) string { // the top-level members by where they start
			keys := []string{`"errors":`, `"data":`, `"label":`, `"path":`, `"hasNext":`, `"extensions":`}
			slices.SortFunc(keys, func(a, c string) int { return bytes.Index(b, []byte(a)) - bytes.Index(b, []byte(c)) })
			var in []string
			for _, k := range keys {
				if bytes.Contains(b, []byte(k)) {
					in = append(in, k)
				}
			}
			return strings.Join(in, " ")
		}; order(got.Bytes()) != order(want) {
			t.Errorf("response %d: members %s, want %s", i, order(got.Bytes()), order(want))
		}
	}
}
