package graph

import (
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/authql/authql/auth"
)

// BenchmarkSelections times the walks over an operation's selections: the
// page-size check and the response-cache scope run on every request, our
// validation rules and the document's weight once per distinct query text.
func BenchmarkSelections(b *testing.B) {
	schema := NewExecutableSchema(Config{}).Schema()
	ours := rules.NewRules(
		core.Rule{Name: "AbuseLimits", RuleFunc: DefaultLimits().rule},
		core.Rule{Name: "OneCredentialField", RuleFunc: credentialRule},
		core.Rule{Name: "NoIntrospection", RuleFunc: introspectionRule},
	)
	for _, tc := range []struct{ name, query string }{
		{"plain", `query($n: Int) { me { id name } posts(first: 20) { edges { node { title author { name posts(last: $n) { totalCount } } } } } }`},
		{"fragments", `query($n: Int) { me { ...U } posts(first: 20) { edges { node { ...P author { ...U } } } } }
			fragment U on User { name posts(last: $n) { totalCount edges { node { ...P } } } }
			fragment P on Post { id title }`},
	} {
		doc, errs := gqlparser.LoadQuery(schema, tc.query)
		if errs != nil {
			b.Fatal(errs)
		}
		op, vars := doc.Operations[0], map[string]any{"n": int64(10)}
		b.Run(tc.name+"/page_sizes", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := checkPageSizes(op, doc, vars); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/response_scope", func(b *testing.B) {
			b.ReportAllocs()
			v := auth.Viewer{UserID: "US01"}
			for b.Loop() {
				if _, _, ok := responseScope(op, doc, v); !ok {
					b.Fatal("not cacheable")
				}
			}
		})
		b.Run(tc.name+"/rules", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if errs := validator.ValidateWithRules(schema, doc, ours); errs != nil {
					b.Fatal(errs)
				}
			}
		})
		b.Run(tc.name+"/doc_weight", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = docWeight(tc.query, doc)
			}
		})
	}
}
