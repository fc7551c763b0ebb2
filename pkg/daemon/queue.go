package daemon

import (
	"context"

	"k8s.io/client-go/util/workqueue"
)

// runQueue works q with workers goroutines until ctx ends, when the queue
// shuts down. Each item goes to handle, which forgets it or adds it back
// rate-limited; the item is marked done after handle returns.
func runQueue[T comparable](ctx context.Context, q workqueue.TypedRateLimitingInterface[T], workers int, handle func(context.Context, T)) {
	go func() {
		<-ctx.Done()
		q.ShutDown()
	}()
	next := func() bool {
		item, quit := q.Get()
		if quit {
			return false
		}
		defer q.Done(item)
		handle(ctx, item)
		return true
	}
	for range workers {
		go func() {
			for next() {
			}
		}()
	}
}
