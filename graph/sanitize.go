package graph

import (
	"regexp"

	"github.com/microcosm-cc/bluemonday"
)

// contentPolicy is what post content may contain: bluemonday's policy for
// user-generated content (links with rel="nofollow" and no javascript: or
// data: URLs, emphasis, lists, code, quotes, tables; no scripts, styles,
// event handlers, forms, frames or SVG), with two differences made on
// purpose:
//
//   - No id or name attribute anywhere (so no image maps either). Stored
//     content is rendered inside our clients' pages, where an element with
//     id="currentUser" or name="config" becomes window.currentUser or
//     document.config: DOM clobbering, which turns "harmless" markup into
//     a way to redirect the page's own scripts.
//   - Images only from absolute https URLs. A relative src would make the
//     reader's browser send a GET to the client's own origin with its
//     cookies; a plain-http one is mixed content and tells the network what
//     is read. Remote https images are kept (posts may show pictures), and
//     docs/SECURITY.md says what they reveal to the host that serves them.
//
// It is safe for concurrent use.
var contentPolicy = newContentPolicy()

func newContentPolicy() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	// bluemonday's standard attributes without "id".
	p.AllowAttrs("dir").Matching(bluemonday.Direction).Globally()
	p.AllowAttrs("lang").Matching(regexp.MustCompile(`^[a-zA-Z]{2,20}$`)).Globally()
	p.AllowAttrs("title").Matching(bluemonday.Paragraph).Globally()
	p.AllowStandardURLs()
	p.AllowElements("article", "aside", "figure", "section", "summary", "hgroup",
		"h1", "h2", "h3", "h4", "h5", "h6", "br", "div", "hr", "p", "span", "wbr",
		"abbr", "acronym", "cite", "code", "dfn", "em", "figcaption", "mark", "s", "samp",
		"strong", "sub", "sup", "var", "b", "i", "pre", "small", "strike", "tt", "u",
		"rp", "rt", "ruby")
	p.AllowAttrs("open").Matching(regexp.MustCompile(`(?i)^(|open)$`)).OnElements("details")
	p.AllowAttrs("cite").OnElements("blockquote", "q")
	p.AllowAttrs("href").OnElements("a")
	p.AllowAttrs("datetime").Matching(bluemonday.ISO8601).OnElements("time", "del", "ins")
	p.AllowAttrs("dir").Matching(bluemonday.Direction).OnElements("bdi", "bdo")
	p.AllowAttrs("cite").Matching(bluemonday.Paragraph).OnElements("del", "ins")
	p.AllowAttrs("value", "min", "max", "low", "high", "optimum").Matching(bluemonday.Number).OnElements("meter")
	p.AllowAttrs("value", "max").Matching(bluemonday.Number).OnElements("progress")
	p.AllowLists()
	p.AllowTables()
	p.AllowAttrs("align").Matching(bluemonday.ImageAlign).OnElements("img")
	p.AllowAttrs("alt").Matching(bluemonday.Paragraph).OnElements("img")
	p.AllowAttrs("height", "width").Matching(bluemonday.NumberOrPercent).OnElements("img")
	p.AllowAttrs("src").Matching(regexp.MustCompile(`(?i)^https://[^/\s]`)).OnElements("img")
	return p
}

// sanitizeContent cleans post content on write, so what is stored and
// served is already safe to render as HTML. Titles and names are plain text
// and are stored as given.
func sanitizeContent(html string) string { return contentPolicy.Sanitize(html) }
