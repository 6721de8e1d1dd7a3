package graph

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
)

// The outbox delivers at least once: an event that arrives a second time
// (same id) does not reach subscribers again; an event without an id (an
// older instance's) always does.
func TestEventDeliveredTwiceReachesSubscribersOnce(t *testing.T) {
	e := newEvents(nil, slog.New(slog.DiscardHandler))
	ch := e.subscribe(t.Context(), "created", "")
	send := func(id, title string) {
		ev := postEvent{Kind: "created", EventID: id}
		ev.Title = title
		b, _ := json.Marshal(ev)
		e.dispatch(string(b))
	}
	send("e1", "one")
	send("e1", "one")
	send("e2", "two")
	send("", "old")
	send("", "old")
	var got []string
	for len(ch) > 0 {
		got = append(got, (<-ch).Title)
	}
	if want := "[one two old old]"; fmt.Sprint(got) != want {
		t.Errorf("subscriber got %v, want %v", got, want)
	}
}

// The ids remembered are the last n: an id older than that counts as new.
func TestRecentIDsForgetsOldest(t *testing.T) {
	r := newRecentIDs(2)
	for _, id := range []string{"a", "b"} {
		if !r.add(id) {
			t.Fatalf("%s seen before it was added", id)
		}
	}
	if r.add("a") {
		t.Error("a, among the last two, added again")
	}
	r.add("c") // forgets a
	if !r.add("a") {
		t.Error("a, older than the last two, still remembered")
	}
}
