package graph

import "github.com/microcosm-cc/bluemonday"

// contentPolicy is bluemonday's policy for user-generated content: links
// (rel="nofollow", no javascript: or data: URLs), emphasis, lists, code,
// quotes, tables, images by http(s) URL; no scripts, styles, event handlers,
// forms, frames or SVG. It is safe for concurrent use.
var contentPolicy = bluemonday.UGCPolicy()

// sanitizeContent cleans post content on write, so what is stored and
// served is already safe to render as HTML. Titles and names are plain text
// and are stored as given.
func sanitizeContent(html string) string { return contentPolicy.Sanitize(html) }
