package graph

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"

	"github.com/authql/authql/cache/bus"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/schema/pulid"
	"github.com/authql/authql/graph/store"
)

// postTopic is the bus topic of post events.
const postTopic = "post"

// postEventKind says what happened to a post; each subscription receives
// one kind.
type postEventKind string

const (
	postCreated postEventKind = "created"
	postUpdated postEventKind = "updated"
	postDeleted postEventKind = "deleted"
)

// postEvent is a post that was created, updated or deleted, as it travels
// between instances.
type postEvent struct {
	Kind postEventKind `json:"k"`
	// EventID names the event: a second delivery of it (the outbox
	// delivers at least once) is dropped (events.dispatch).
	EventID          string `json:"e,omitempty"`
	store.PostRecord        // only the ID for deleted
}

func newPostEvent(kind postEventKind, p *ent.Post) postEvent {
	return postEvent{Kind: kind, PostRecord: store.NewPostRecord(p)}
}

// events fans post events out to this process's subscribers. Events come
// from every instance over the bus (Redis pub/sub), so a post created
// through one instance reaches a subscriber connected to another.
type events struct {
	bus *bus.Bus
	log *slog.Logger

	mu   sync.Mutex
	subs map[*eventSub]struct{}
	seen recentIDs
}

type eventSub struct {
	kind postEventKind
	id   pulid.ID // for postUpdated: only this post
	ch   chan postEvent
}

// subscriberBuffer is how many events a subscriber may lag behind before
// it is dropped (its subscription completes): one slow client must not
// hold up the others or grow memory without bound.
const subscriberBuffer = 64

func newEvents(bus *bus.Bus, log *slog.Logger) *events {
	e := &events{bus: bus, log: log, subs: map[*eventSub]struct{}{}, seen: newRecentIDs(recentEvents)}
	if bus != nil {
		bus.Handle(postTopic, e.dispatch)
	}
	return e
}

// publish sends an event to every instance (the outbox's kindPosts
// delivers it, and retries it when this fails).
func (e *events) publish(ctx context.Context, ev postEvent) error {
	if e.bus == nil {
		return nil
	}
	b, _ := json.Marshal(ev) // compact JSON: no newline
	return e.bus.Broadcast(ctx, postTopic, string(b))
}

func (e *events) dispatch(payload string) {
	var ev postEvent
	if err := json.Unmarshal([]byte(payload), &ev); err != nil {
		e.log.Warn("malformed post event", slog.Any("error", err))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.EventID != "" && !e.seen.add(ev.EventID) {
		return // delivered before
	}
	for s := range e.subs {
		if s.kind != ev.Kind || (s.id != "" && s.id != ev.ID) {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			e.log.Warn("subscriber too slow: dropped", slog.String("kind", string(s.kind)))
			delete(e.subs, s)
			close(s.ch)
		}
	}
}

// recentEvents is how many event ids each instance remembers to drop a
// second delivery: a redelivery comes seconds after the first (once the
// outbox's backoff or a lease ran out), many thousands of events sooner
// than this would forget it.
const recentEvents = 4096

// recentIDs is a set of the last n ids added.
type recentIDs struct {
	ids  map[string]struct{}
	ring []string
	next int
}

func newRecentIDs(n int) recentIDs {
	return recentIDs{ids: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add records id and reports whether it was new.
func (r *recentIDs) add(id string) bool {
	if _, ok := r.ids[id]; ok {
		return false
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.ids, old)
	}
	r.ring[r.next] = id
	r.next = (r.next + 1) % len(r.ring)
	r.ids[id] = struct{}{}
	return true
}

// subscribe returns the events of a kind (for postUpdated, of one post)
// until ctx ends.
func (e *events) subscribe(ctx context.Context, kind postEventKind, id pulid.ID) <-chan postEvent {
	s := &eventSub{kind: kind, id: id, ch: make(chan postEvent, subscriberBuffer)}
	e.mu.Lock()
	e.subs[s] = struct{}{}
	e.mu.Unlock()
	context.AfterFunc(ctx, func() {
		e.mu.Lock()
		if _, ok := e.subs[s]; ok {
			delete(e.subs, s)
			close(s.ch)
		}
		e.mu.Unlock()
	})
	return s.ch
}

// stream turns events into a subscription's channel of values. It runs
// once per group of subscriptions (hub.go), not per socket: the hub charges
// each member for each event.
func stream[T any](ctx context.Context, evs <-chan postEvent, conv func(postEvent) T) <-chan T {
	out := make(chan T, 1)
	go func() {
		defer close(out)
		for ev := range evs {
			select {
			case out <- conv(ev):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// errNotLive refuses a subscription outside a group of the WebSocket
// transport (operationKindGuard refuses those first).
var errNotLive = errors.New("subscriptions are served over a WebSocket only")

// startSubscription checks that a subscription runs as a group of the
// WebSocket transport, which counts, charges and ends its members.
func (r *Resolver) startSubscription(ctx context.Context) error {
	if !inGroup(ctx) {
		return errNotLive
	}
	return nil
}
