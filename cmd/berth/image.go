package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berthrt/berth/actors/agent"
)

const imageSynopsis = `berth image ls | pull REF | rm REF | prune  [--work_dir=DIR] [--docker_store_dir=DIR]

pull imports REF into the store and prints its reference and digest:
docker-archive:PATH, oci:PATH[:TAG], a name found in --docker_registry=DIR,
or NAME[:TAG|@DIGEST] pulled from its registry with
--docker_registry=HOST[:PORT] (names without a host are pulled from it).`

func image(args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(os.Stderr, "Usage: %s\n", imageSynopsis)
		return 2
	}
	sub := args[0]
	fs := newFlagSet("image "+sub, imageSynopsis)
	var af agentFlags
	af.register(fs)
	if err := fs.Parse(normalizeFlags(args[1:])); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return 0
		}
		fmt.Fprintf(os.Stderr, "berth image: %v\n", err)
		return 2
	}
	logger, err := af.logger()
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth image: %v\n", err)
		return 2
	}
	if sub != "ls" && sub != "list" {
		// Only one process may change the store at a time; an agent holds
		// the work dir's lock while it runs.
		lctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		release, err := agent.LockWorkDir(lctx, af.options(), func(pid int) {
			fmt.Fprintf(os.Stderr, "berth: waiting for the agent (pid %d) that uses %s\n", pid, af.workDir)
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "berth: %v\n", err)
			return 1
		}
		defer release()
	}
	st, err := agent.NewStore(af.options(), logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth: %v\n", err)
		return 1
	}
	ctx := context.Background()
	if _, err := st.Recover(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "berth: %v\n", err)
		return 1
	}
	switch sub {
	case "ls", "list":
		imgs, err := st.List(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "berth: %v\n", err)
			return 1
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		_, _ = fmt.Fprintln(tw, "REFERENCE\tDIGEST\tLAYERS\tSIZE\tSOURCE")
		for _, i := range imgs {
			digest := i.Digest
			if len(digest) > 19 {
				digest = digest[:19]
			}
			_, _ = fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", i.Reference, digest, len(i.LayerIDs), humanSize(i.Size), i.Source)
		}
		_ = tw.Flush()
		return 0
	case "pull", "import":
		if fs.NArg() == 0 {
			fmt.Fprintf(os.Stderr, "berth image pull: give an image reference\n")
			return 2
		}
		status := 0
		for _, ref := range fs.Args() {
			img, err := st.Get(ctx, ref, "", false)
			if err != nil {
				fmt.Fprintf(os.Stderr, "berth: %v\n", err)
				status = 1
				continue
			}
			fmt.Printf("%s %s (%d layers, %s)\n", img.Reference, img.Digest, len(img.LayerIDs), humanSize(img.Size))
		}
		return status
	case "rm", "remove":
		if fs.NArg() == 0 {
			fmt.Fprintf(os.Stderr, "berth image rm: give an image reference\n")
			return 2
		}
		status := 0
		for _, ref := range fs.Args() {
			if err := st.Remove(ctx, ref); err != nil {
				fmt.Fprintf(os.Stderr, "berth: %v\n", err)
				status = 1
				continue
			}
			fmt.Println("removed", ref)
		}
		return status
	case "prune":
		// Keep every layer a container's rootfs was built from.
		active, err := agent.ActiveLayers(af.options())
		if err != nil {
			fmt.Fprintf(os.Stderr, "berth: %v\n", err)
			return 1
		}
		r, err := st.Prune(ctx, nil, active)
		if err != nil {
			fmt.Fprintf(os.Stderr, "berth: %v\n", err)
			return 1
		}
		fmt.Printf("removed %d images, %d layers, %s\n", len(r.RemovedImages), len(r.RemovedLayers), humanSize(r.ReclaimedBytes))
		if len(r.RemovedImages) > 0 {
			fmt.Println(" " + strings.Join(r.RemovedImages, "\n "))
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "berth image: unknown subcommand %q\nUsage: %s\n", sub, imageSynopsis)
	return 2
}

func humanSize(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
