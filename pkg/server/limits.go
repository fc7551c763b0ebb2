package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBusy means the queue is full or the wait for a worker took too long.
var ErrBusy = errors.New("daemon busy")

// The two ways of being busy.
var (
	ErrQueueFull    = fmt.Errorf("%w: queue full", ErrBusy)
	ErrQueueTimeout = fmt.Errorf("%w: no worker free in time", ErrBusy)
)

// limiter bounds the number of operations running at once and the number
// waiting for a slot. Background work (hot-plug) takes a slot only when no
// CNI request waits for one, and holds at most `background` of them.
type limiter struct {
	slots    chan struct{}
	waiting  atomic.Int64
	maxQueue int64
	maxWait  time.Duration
	low      chan struct{}
}

func newLimiter(workers, queue, background int, maxWait time.Duration) *limiter {
	return &limiter{slots: make(chan struct{}, workers), maxQueue: int64(queue), maxWait: maxWait,
		low: make(chan struct{}, max(1, background))}
}

// lowPoll is how often background work waiting for a slot looks again.
const lowPoll = 5 * time.Millisecond

// acquireLow waits for a slot that no CNI request is waiting for, until ctx
// ends.
func (l *limiter) acquireLow(ctx context.Context) (func(), error) {
	select {
	case l.low <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	t := time.NewTicker(lowPoll)
	defer t.Stop()
	for {
		if l.waiting.Load() == 0 {
			select {
			case l.slots <- struct{}{}:
				return func() { <-l.slots; <-l.low }, nil
			default:
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			<-l.low
			return nil, ctx.Err()
		}
	}
}

func (l *limiter) acquire(ctx context.Context) (func(), error) {
	select {
	case l.slots <- struct{}{}:
		return l.release, nil
	default:
	}
	if l.waiting.Add(1) > l.maxQueue {
		l.waiting.Add(-1)
		return nil, ErrQueueFull
	}
	defer l.waiting.Add(-1)
	t := time.NewTimer(l.maxWait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return l.release, nil
	case <-t.C:
		return nil, ErrQueueTimeout
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *limiter) release() { <-l.slots }

// keyedMutex serializes operations on one key (a container ID).
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{}
	refs int
}

func newKeyedMutex() *keyedMutex { return &keyedMutex{locks: map[string]*keyLock{}} }

func (k *keyedMutex) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	l := k.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; k.unref(key, l) }, nil
	case <-ctx.Done():
		k.unref(key, l)
		return nil, ctx.Err()
	}
}

func (k *keyedMutex) unref(key string, l *keyLock) {
	k.mu.Lock()
	l.refs--
	if l.refs == 0 {
		delete(k.locks, key)
	}
	k.mu.Unlock()
}
