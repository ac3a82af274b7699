package scanner

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
)

const (
	// maxBatchSize is the most requests one JSON batch may carry ("Combine
	// multiple HTTP requests using JSON batching", Microsoft Graph docs).
	maxBatchSize = 20

	// maxQueued bounds the lookups waiting for a batch, so that listing a
	// large tenant waits for the batches instead of buffering every Team.
	maxQueued = 2000
)

// lookup is one GET inside a JSON batch. done is called exactly once with
// its final outcome, unless the scan's context ends first.
type lookup struct {
	// path is relative to the Graph base URL, as batch requests require.
	path string
	// attempts counts the HTTP requests that carried this lookup.
	attempts int
	done     func(lookupResult)
}

// lookupResult is a lookup's 2xx body, or err: a *GraphError, an
// *AttemptsError when retries ran out, or the batch request's own error.
type lookupResult struct {
	body     []byte
	attempts int
	err      error
}

// batchRequestItem, batchRequestBody and their responses are the JSON
// batching format of POST /$batch.
type batchRequestItem struct {
	ID     string `json:"id"`
	Method string `json:"method"`
	URL    string `json:"url"`
}

type batchRequestBody struct {
	Requests []batchRequestItem `json:"requests"`
}

type batchResponseItem struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

type batchResponseBody struct {
	Responses []batchResponseItem `json:"responses"`
}

// batcher groups lookups into JSON batches of up to maxBatchSize and sends
// them with at most cap(slots) batches in flight. A lookup that Graph
// throttles or fails with a retryable status goes into a later batch after
// its own Retry-After or backoff. A batch that fails as a whole, after the
// retry gate's attempts, fails only its own lookups.
type batcher struct {
	g      *GraphClient
	logger *slog.Logger
	slots  chan struct{}

	mu    sync.Mutex
	queue []*lookup
	// open counts lookups added and not yet done: queued, in flight or
	// waiting for a retry.
	open   int
	closed bool
	// ready wakes the dispatcher and space wakes a producer waiting for
	// room in the queue.
	ready chan struct{}
	space chan struct{}

	// tasks tracks batch sends and retry waits, so that run returns only
	// after all of them ended.
	tasks sync.WaitGroup
}

func newBatcher(g *GraphClient, logger *slog.Logger, concurrency int) *batcher {
	return &batcher{
		g:      g,
		logger: logger,
		slots:  make(chan struct{}, concurrency),
		ready:  make(chan struct{}, 1),
		space:  make(chan struct{}, 1),
	}
}

// add queues lookups, waiting while the queue is full. Call it from the
// producer only, never from a lookup's done callback.
func (b *batcher) add(ctx context.Context, lookups ...*lookup) error {
	b.mu.Lock()
	for len(b.queue) >= maxQueued {
		b.mu.Unlock()
		select {
		case <-b.space:
		case <-ctx.Done():
			return ctx.Err()
		}
		b.mu.Lock()
	}
	b.queue = append(b.queue, lookups...)
	b.open += len(lookups)
	b.mu.Unlock()

	notify(b.ready)
	return nil
}

// follow queues a lookup without waiting. A done callback uses it, before
// it returns, for the lookups that its response leads to.
func (b *batcher) follow(l *lookup) {
	b.mu.Lock()
	b.queue = append(b.queue, l)
	b.open++
	b.mu.Unlock()
	notify(b.ready)
}

// close marks the end of the producer's lookups for the dispatcher.
func (b *batcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	notify(b.ready)
}

// run sends batches until the producer has closed and every lookup is done,
// or until ctx ends.
func (b *batcher) run(ctx context.Context) {
	defer b.tasks.Wait()

	for {
		select {
		case b.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		batch := b.take(ctx)
		if batch == nil {
			<-b.slots
			return
		}
		b.tasks.Go(func() {
			defer func() { <-b.slots }()
			b.send(ctx, batch)
		})
	}
}

// take waits for queued lookups and returns up to maxBatchSize of them, or
// nil when everything is done or ctx ended. Taking only once a slot is free
// lets lookups pile up into full batches while every slot is busy.
func (b *batcher) take(ctx context.Context) []*lookup {
	b.mu.Lock()
	for len(b.queue) == 0 {
		if b.closed && b.open == 0 {
			b.mu.Unlock()
			return nil
		}
		b.mu.Unlock()
		select {
		case <-b.ready:
		case <-ctx.Done():
			return nil
		}
		b.mu.Lock()
	}
	n := min(len(b.queue), maxBatchSize)
	batch := make([]*lookup, n)
	copy(batch, b.queue)
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		// Drop the backing array, which holds on to done lookups.
		b.queue = nil
	}
	b.mu.Unlock()

	notify(b.space)
	return batch
}

// finish delivers a lookup's outcome and counts it done.
func (b *batcher) finish(l *lookup, res lookupResult) {
	res.attempts = l.attempts
	l.done(res)

	b.mu.Lock()
	b.open--
	b.mu.Unlock()
	notify(b.ready)
}

// retryLater queues l again after wait, unless ctx ends first.
func (b *batcher) retryLater(ctx context.Context, l *lookup, wait time.Duration) {
	b.tasks.Go(func() {
		if err := b.g.gate.sleep(ctx, wait); err != nil {
			return
		}
		b.mu.Lock()
		b.queue = append(b.queue, l)
		b.mu.Unlock()
		notify(b.ready)
	})
}

// send posts one batch and sorts its responses into done lookups and
// retries.
func (b *batcher) send(ctx context.Context, batch []*lookup) {
	body, err := json.Marshal(batchRequestBody{Requests: batchItems(batch)})
	if err != nil {
		b.failAll(batch, fmt.Errorf("encode batch: %w", err))
		return
	}
	gate := &b.g.gate
	raw, attempts, err := gate.do(ctx, b.g, b.logger, graphRequest{
		method: http.MethodPost,
		url:    b.g.base.String() + "/$batch",
		body:   body,
		weight: len(batch),
	})
	for _, l := range batch {
		l.attempts += attempts
	}
	if err != nil {
		if ctx.Err() == nil {
			b.logger.Warn("batch failed", "lookups", len(batch), "attempts", attempts, "err", err)
		}
		b.failAll(batch, err)
		return
	}
	var answer batchResponseBody
	if err := json.Unmarshal(raw, &answer); err != nil {
		b.failAll(batch, fmt.Errorf("decode batch response: %w", err))
		return
	}

	byID := make(map[string]batchResponseItem, len(answer.Responses))
	for _, r := range answer.Responses {
		byID[r.ID] = r
	}
	now := gate.now()

	// Successes go to the pacer before any throttled answer of the same
	// batch, so that a rate cut counts them.
	succeeded := 0
	for i := range batch {
		if r, ok := byID[strconv.Itoa(i)]; ok && r.Status >= 200 && r.Status <= 299 {
			succeeded++
		}
	}
	gate.pacer.succeeded(now, succeeded)

	retried, previousReason := 0, ""
	for i, l := range batch {
		r, ok := byID[strconv.Itoa(i)]
		if !ok {
			b.finish(l, lookupResult{err: fmt.Errorf("batch response has no answer for request %d", i)})
			continue
		}
		if r.Status >= 200 && r.Status <= 299 {
			b.finish(l, lookupResult{body: r.Body})
			continue
		}

		header := make(http.Header, len(r.Headers))
		for k, v := range r.Headers {
			header.Set(k, v)
		}
		gate.pacer.rateLimited(now, header)
		v := classify(r.Status, header, nil, now)
		if v.throttled {
			gate.pacer.throttled(now, v.retryAfter)
			gate.hooks.Throttled()
		}
		failure := parseGraphError(r.Status, header, r.Body)
		switch {
		case !v.retry:
			b.finish(l, lookupResult{err: failure})
		case l.attempts >= gate.maxAttempts:
			b.finish(l, lookupResult{err: &AttemptsError{Attempts: l.attempts, Err: failure}})
		default:
			retried++
			previousReason = v.reason
			gate.hooks.Retried()
			b.retryLater(ctx, l, gate.backoff.wait(l.attempts, v))
		}
	}
	if retried > 0 {
		b.logger.Debug("retry batch lookups", "lookups", retried, "of", len(batch), "reason", previousReason)
	}
}

// failAll finishes every lookup of a batch with err.
func (b *batcher) failAll(batch []*lookup, err error) {
	for _, l := range batch {
		b.finish(l, lookupResult{err: err})
	}
}

// batchItems numbers the lookups of a batch from 0, the ids that match the
// answers back to them.
func batchItems(batch []*lookup) []batchRequestItem {
	items := make([]batchRequestItem, len(batch))
	for i, l := range batch {
		items[i] = batchRequestItem{ID: strconv.Itoa(i), Method: http.MethodGet, URL: l.path}
	}
	return items
}

// notify wakes one waiter on ch without blocking.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
