package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/berthrt/berth/actors/ask"
	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/actors/store/appc"
	provisionerv1 "github.com/berthrt/berth/messages/provisioner/v1"
	storev1 "github.com/berthrt/berth/messages/store/v1"
)

// imageViaAgent runs `berth image pull|rm|prune --agent=ADDR`: the running
// agent holds the work dir, so its own store and provisioner do the work (a
// prune there keeps what its containers use). A pull's progress comes back
// from the agent's store and is shown as without --agent.
func imageViaAgent(sub string, refs []string, addr string, rf remoteFlags, output string) int {
	sys, stop, err := dialAgent(addr, rf)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth: %v\n", err)
		return 1
	}
	defer stop()
	ctx := context.Background()
	storeOf := func(ref string) *actor.PID {
		if strings.HasPrefix(ref, appc.Prefix) {
			return actor.NewPID(addr, "agent/store-appc")
		}
		return actor.NewPID(addr, "agent/store-docker")
	}
	status := 0
	switch sub {
	case "pull", "import":
		for _, ref := range refs {
			view := newPullView(output, ref, os.Stdout, os.Stderr)
			img, err := imageMessage(ref)
			if err != nil {
				view.fail(ref, err)
				status = 1
				continue
			}
			img.Cached = false
			// The agent's store sends the pull's progress to this actor.
			progress := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
				switch p := c.Message().(type) {
				case *storev1.PullProgress:
					view.progress(store.ProgressFromProto(p))
				case progressFlush:
					c.Respond(p)
				}
			}))
			req := &storev1.GetImageRequest{Image: img, ProgressToAddress: progress.GetAddress(), ProgressToId: progress.GetId()}
			r, err := ask.Request[*storev1.GetImageResponse](ctx, sys.Root, storeOf(ref), req, 30*time.Minute)
			// The events sent before the answer are in the mailbox: drain
			// it (user messages keep their order) before stopping it.
			_, _ = sys.Root.RequestFuture(progress, progressFlush{}, 10*time.Second).Result()
			_ = sys.Root.StopFuture(progress).Wait()
			if err != nil {
				view.fail(ref, err)
				status = 1
				continue
			}
			view.result(store.ImageFromProto(r.GetImage()))
		}
	case "rm", "remove":
		for _, ref := range refs {
			if _, err := ask.Request[*storev1.RemoveImageResponse](ctx, sys.Root, storeOf(ref), &storev1.RemoveImageRequest{Reference: ref}, time.Minute); err != nil {
				fmt.Fprintf(os.Stderr, "berth: %v\n", err)
				status = 1
				continue
			}
			fmt.Println("removed", ref)
		}
	case "prune":
		r, err := ask.Request[*provisionerv1.PruneImagesResponse](ctx, sys.Root, actor.NewPID(addr, "agent/provisioner"), &provisionerv1.PruneImagesRequest{}, 30*time.Minute)
		if err != nil {
			fmt.Fprintf(os.Stderr, "berth: %v\n", err)
			return 1
		}
		printPruned(r.GetRemovedImages(), len(r.GetRemovedLayers()), r.GetReclaimedBytes())
	default:
		fmt.Fprintf(os.Stderr, "berth image %s: --agent is for pull, rm and prune (ls and inspect read the store directly)\n", sub)
		return 2
	}
	return status
}

// progressFlush is answered by a pull's progress actor once the events
// before it are drawn.
type progressFlush struct{}

// printPruned prints what a prune removed.
func printPruned(images []string, layers int, bytes uint64) {
	fmt.Printf("removed %d images, %d layers, %s\n", len(images), layers, humanSize(bytes))
	if len(images) > 0 {
		fmt.Println(" " + strings.Join(images, "\n "))
	}
}
