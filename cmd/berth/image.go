package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berthrt/berth/actors/agent"
	"github.com/berthrt/berth/actors/store"
	"github.com/berthrt/berth/actors/store/appc"
)

const imageSynopsis = `berth image ls | inspect REF | pull REF [--output=text|json] | rm REF | prune  [--work_dir=DIR] [--docker_store_dir=DIR] [--appc_store_dir=DIR]
berth image pull REF | rm REF | prune  --agent=HOST:PORT   (ask a running agent, which holds the work dir)

pull imports REF into the store and prints its reference and digest:
docker-archive:PATH, oci:PATH[:TAG], a name found in --docker_registry=DIR,
or NAME[:TAG|@DIGEST] pulled from its registry with
--docker_registry=HOST[:PORT] (names without a host are pulled from it;
logins from --docker_config: credHelpers, credsStore, auths). On a terminal
it shows one line per layer, updated in place; otherwise a line on stderr
whenever a layer changes phase. --output=json prints newline-delimited JSON
on stdout instead: {"type":"progress","reference","layer","phase"
(waiting|downloading|extracting|done|cached),"current","total"} per event,
then {"type":"result","reference","digest","layers","size","source"}, or
{"type":"error","reference","error","code"} and exit status 1.
inspect prints stored images as JSON (by reference, familiar name or
digest); it never pulls. appc:NAME[:VERSION][,LABEL=VALUE...] and
appc:sha512-HEX name APPC images (pull fetches them by simple discovery from
--appc_simple_discovery_uri_prefix or imports them from
<appc_store_dir>/import/*.aci); ls and prune cover both stores.`

func image(args []string) int {
	if len(args) == 0 {
		fmt.Fprintf(os.Stderr, "Usage: %s\n", imageSynopsis)
		return 2
	}
	sub := args[0]
	fs := newFlagSet("image "+sub, imageSynopsis)
	var af agentFlags
	af.register(fs)
	output := fs.String("output", outputText, "pull: text (progress on stderr) or json (newline-delimited JSON events on stdout)")
	var rf remoteFlags
	rf.register(fs)
	agentAddr := fs.String("agent", "", "pull, rm, prune: ask the running agent at HOST:PORT, which holds the work dir")
	refs, err := parseInterleaved(fs, normalizeFlags(args[1:]))
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return 0
		}
		fmt.Fprintf(os.Stderr, "berth image: %v\n", err)
		return 2
	}
	if *output != outputText && *output != outputJSON {
		fmt.Fprintf(os.Stderr, "berth image: --output=%s: want text or json\n", *output)
		return 2
	}
	if *agentAddr != "" {
		return imageViaAgent(sub, refs, *agentAddr, rf, *output)
	}
	// fail reports an error that ends the command: as JSON for a pull
	// with --output=json, else on stderr.
	jsonOut := *output == outputJSON && (sub == "pull" || sub == "import")
	fail := func(err error) int {
		if jsonOut {
			(&jsonView{out: os.Stdout}).fail(strings.Join(refs, " "), err)
		} else {
			fmt.Fprintf(os.Stderr, "berth: %v\n", err)
		}
		return 1
	}
	logger, err := af.logger()
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth image: %v\n", err)
		return 2
	}
	readOnly := sub == "ls" || sub == "list" || sub == "inspect"
	if !readOnly {
		// Only one process may change the store at a time; an agent holds
		// the work dir's lock while it runs.
		lctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		release, err := agent.LockWorkDir(lctx, af.options(), func(pid int) {
			fmt.Fprintf(os.Stderr, "berth: waiting for the agent (pid %d) that uses %s; give --agent=HOST:PORT to ask it instead\n", pid, af.workDir)
		})
		if err != nil {
			return fail(err)
		}
		defer release()
	}
	st, err := agent.NewStore(af.options(), logger)
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
	if !readOnly {
		// Recovery clears the store's staging area: only with the lock, or
		// it would break a pull of a running agent.
		if _, err := st.Recover(ctx); err != nil {
			return fail(err)
		}
	}
	switch sub {
	case "ls", "list":
		imgs, err := st.List(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "berth: %v\n", err)
			return 1
		}
		imgs = append(imgs, appcImages(ctx, af)...)
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
	case "inspect":
		if len(refs) == 0 {
			fmt.Fprintf(os.Stderr, "berth image inspect: give an image reference or digest\n")
			return 2
		}
		imgs, err := st.List(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "berth: %v\n", err)
			return 1
		}
		imgs = append(imgs, appcImages(ctx, af)...)
		var found []store.Image
		status := 0
		for _, ref := range refs {
			img, ok := findImage(imgs, ref)
			if !ok {
				fmt.Fprintf(os.Stderr, "berth: image %q is not in the store (berth image ls lists it)\n", ref)
				status = 1
				continue
			}
			found = append(found, img)
		}
		if len(found) > 0 {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(found); err != nil {
				fmt.Fprintf(os.Stderr, "berth: %v\n", err)
				return 1
			}
		}
		return status
	case "pull", "import":
		if len(refs) == 0 {
			fmt.Fprintf(os.Stderr, "berth image pull: give an image reference\n")
			return 2
		}
		status := 0
		for _, ref := range refs {
			view := newPullView(*output, ref, os.Stdout, os.Stderr)
			from, err := storeFor(ctx, af, st, ref)
			if err != nil {
				view.fail(ref, err)
				status = 1
				continue
			}
			img, err := from.Get(store.WithProgress(ctx, view.progress), ref, "", false)
			if err != nil {
				view.fail(ref, err)
				status = 1
				continue
			}
			view.result(img)
		}
		return status
	case "rm", "remove":
		if len(refs) == 0 {
			fmt.Fprintf(os.Stderr, "berth image rm: give an image reference\n")
			return 2
		}
		status := 0
		for _, ref := range refs {
			from, err := storeFor(ctx, af, st, ref)
			if err != nil {
				fmt.Fprintf(os.Stderr, "berth: %s: %v\n", ref, err)
				status = 1
				continue
			}
			if err := from.Remove(ctx, ref); err != nil {
				fmt.Fprintf(os.Stderr, "berth: %v\n", err)
				status = 1
				continue
			}
			fmt.Println("removed", ref)
		}
		return status
	case "prune":
		// Keep every image a container was provisioned from, and its layers.
		active, inUse, err := agent.InUse(af.options())
		if err != nil {
			fmt.Fprintf(os.Stderr, "berth: %v\n", err)
			return 1
		}
		r, err := st.Prune(ctx, inUse, active)
		if err != nil {
			fmt.Fprintf(os.Stderr, "berth: %v\n", err)
			return 1
		}
		if as, err := appcStore(ctx, af, true); err != nil {
			fmt.Fprintf(os.Stderr, "berth: appc store: %v\n", err)
			return 1
		} else if as != nil {
			ar, err := as.Prune(ctx, inUse, active)
			if err != nil {
				fmt.Fprintf(os.Stderr, "berth: appc store: %v\n", err)
				return 1
			}
			for _, ref := range ar.RemovedImages {
				r.RemovedImages = append(r.RemovedImages, appc.Prefix+ref)
			}
			r.RemovedLayers = append(r.RemovedLayers, ar.RemovedLayers...)
			r.ReclaimedBytes += ar.ReclaimedBytes
		}
		printPruned(r.RemovedImages, len(r.RemovedLayers), r.ReclaimedBytes)
		return 0
	}
	fmt.Fprintf(os.Stderr, "berth image: unknown subcommand %q\nUsage: %s\n", sub, imageSynopsis)
	return 2
}

// findImage finds ref among imgs: a full reference, a familiar name
// (busybox:latest, berth/test:v1) or a digest (full, or its hex prefix).
func findImage(imgs []store.Image, ref string) (store.Image, bool) {
	for _, img := range imgs {
		familiar := familiarName(img.Reference)
		hex := strings.TrimPrefix(img.Digest, "sha256:")
		switch {
		case ref == img.Reference, ref == familiar, ref == img.Digest, ref == img.ConfigDigest,
			len(ref) >= 12 && strings.HasPrefix(hex, strings.TrimPrefix(ref, "sha256:")):
			return img, true
		}
	}
	return store.Image{}, false
}

// familiarName is a canonical reference as Docker shows it: without
// docker.io/, and without library/ unless the repository has more path
// components (docker.io/library/a/b is library/a/b).
func familiarName(ref string) string {
	rest, ok := strings.CutPrefix(ref, "docker.io/")
	if !ok {
		return ref
	}
	if official, ok := strings.CutPrefix(rest, "library/"); ok {
		repo, _, _ := strings.Cut(official, "@")
		if i := strings.LastIndexByte(repo, ':'); i >= 0 {
			repo = repo[:i]
		}
		if !strings.Contains(repo, "/") {
			return official
		}
	}
	return rest
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
