package graph

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"

	"github.com/authql/authql/cache"
	"github.com/authql/authql/ent"
	"github.com/authql/authql/ent/schema/pulid"
)

// postTopic is the bus topic of post events.
const postTopic = "post"

// postEvent is a post that was created, updated or deleted, as it travels
// between instances.
type postEvent struct {
	Kind             string `json:"k"` // created, updated, deleted
	cache.PostRecord        // only the ID for deleted
}

func newPostEvent(kind string, p *ent.Post) postEvent {
	return postEvent{Kind: kind, PostRecord: cache.NewPostRecord(p)}
}

// events fans post events out to this process's subscribers. Events come
// from every instance over the bus (Redis pub/sub), so a post created
// through one instance reaches a subscriber connected to another.
type events struct {
	bus *cache.Bus
	log *slog.Logger

	mu   sync.Mutex
	subs map[*eventSub]struct{}
}

type eventSub struct {
	kind string
	id   pulid.ID // for "updated": only this post
	ch   chan postEvent
}

// subscriberBuffer is how many events a subscriber may lag behind before
// it is dropped (its subscription completes): one slow client must not
// hold up the others or grow memory without bound.
const subscriberBuffer = 64

func newEvents(bus *cache.Bus, log *slog.Logger) *events {
	e := &events{bus: bus, log: log, subs: map[*eventSub]struct{}{}}
	if bus != nil {
		bus.Handle(postTopic, e.dispatch)
	}
	return e
}

// publish sends an event to every instance. It is a notification: a failure
// is logged and the write it reports stands.
func (e *events) publish(ctx context.Context, ev postEvent) {
	if e.bus == nil {
		return
	}
	b, _ := json.Marshal(ev) // compact JSON: no newline
	if err := e.bus.Broadcast(ctx, postTopic, string(b)); err != nil {
		e.log.WarnContext(ctx, "publish post event", slog.Any("error", err))
	}
}

func (e *events) dispatch(payload string) {
	var ev postEvent
	if err := json.Unmarshal([]byte(payload), &ev); err != nil {
		e.log.Warn("malformed post event", slog.Any("error", err))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for s := range e.subs {
		if s.kind != ev.Kind || (s.id != "" && s.id != ev.ID) {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			e.log.Warn("subscriber too slow: dropped", slog.String("kind", s.kind))
			delete(e.subs, s)
			close(s.ch)
		}
	}
}

// subscribe returns the events of a kind (for "updated", of one post) until
// ctx ends.
func (e *events) subscribe(ctx context.Context, kind string, id pulid.ID) <-chan postEvent {
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

// stream turns events into a subscription's channel of values.
func stream[T any](ctx context.Context, evs <-chan postEvent, conv func(postEvent) T, done func()) <-chan T {
	out := make(chan T, 1)
	go func() {
		defer close(out)
		defer done()
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
