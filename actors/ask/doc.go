// Package ask is Berth's typed request/reply over protoactor futures: the
// libprocess dispatch-and-Future pair.
//
// An actor answers a request with its response message, or with a
// typesv1.Status that carries the error class (Respond does this). A caller
// gets the typed response or a Go error of the right errdefs class:
//
//	resp, err := ask.Request[*storev1.GetImageResponse](ctx, root, store, req, time.Minute)
//
// From inside an actor, Reenter sends the request and runs the continuation
// back on the actor's mailbox goroutine when the reply arrives, so Receive
// never blocks.
package ask
