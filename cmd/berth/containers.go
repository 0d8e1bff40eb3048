package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/berthrt/berth/actors/agent"
	"github.com/berthrt/berth/actors/ask"
	containerizerv1 "github.com/berthrt/berth/messages/containerizer/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
)

const containersSynopsis = `berth ps|wait|kill|destroy --agent=HOST:PORT [ID...] [--signal=N]

Talk to a running agent (berth agent): list its containers, wait for one to
end (prints its exit code and exits with it), send it a signal, destroy it.`

// containersCmd runs ps, wait, kill and destroy against a running agent.
func containersCmd(verb string, args []string) int {
	fs := newFlagSet(verb, containersSynopsis)
	var rf remoteFlags
	rf.register(fs)
	var addr string
	var sig int
	fs.StringVar(&addr, "agent", "", "address of the agent (host:port)")
	fs.IntVar(&sig, "signal", 15, "signal for kill")
	ids, err := parseInterleaved(fs, normalizeFlags(args))
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return 0
		}
		fmt.Fprintf(os.Stderr, "berth %s: %v\n", verb, err)
		return 2
	}
	if addr == "" {
		fmt.Fprintf(os.Stderr, "berth %s: give --agent=HOST:PORT of a running `berth agent` (an embedded agent of `berth execute` serves only its own command)\n", verb)
		return 2
	}
	if verb != "ps" && len(ids) == 0 {
		fmt.Fprintf(os.Stderr, "berth %s: give a container id\n", verb)
		return 2
	}
	sys, stop, err := dialAgent(addr, rf)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth: %v\n", err)
		return 1
	}
	defer stop()
	ctx := context.Background()
	cz := agent.ContainerizerPID(addr)
	switch verb {
	case "ps":
		r, err := ask.Request[*containerizerv1.ListContainersResponse](ctx, sys.Root, cz, &containerizerv1.ListContainersRequest{}, 10*time.Second)
		if err != nil {
			fmt.Fprintf(os.Stderr, "berth: %v\n", err)
			return 1
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		_, _ = fmt.Fprintln(tw, "CONTAINER\tSTATE\tPID\tIMAGE\tSTARTED")
		for _, c := range r.GetContainers() {
			started := time.Unix(int64(c.GetStartedAt()), 0).Format(time.RFC3339)
			_, _ = fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", c.GetContainerId().GetValue(), stateName(c.GetState()), c.GetPid(), c.GetImage(), started)
		}
		_ = tw.Flush()
		return 0
	case "wait":
		status := 0
		for _, id := range ids {
			r, err := ask.Request[*containerizerv1.WaitContainerResponse](ctx, sys.Root, cz,
				&containerizerv1.WaitContainerRequest{ContainerId: &typesv1.ContainerID{Value: id}}, ask.Forever)
			if err != nil {
				fmt.Fprintf(os.Stderr, "berth: %v\n", err)
				status = 1
				continue
			}
			status = printTermination(id, r.GetTermination())
		}
		return status
	case "kill":
		status := 0
		for _, id := range ids {
			_, err := ask.Request[*containerizerv1.KillContainerResponse](ctx, sys.Root, cz,
				&containerizerv1.KillContainerRequest{ContainerId: &typesv1.ContainerID{Value: id}, Signal: int32(sig)}, 10*time.Second)
			if err != nil {
				fmt.Fprintf(os.Stderr, "berth: %v\n", err)
				status = 1
			}
		}
		return status
	case "destroy":
		status := 0
		for _, id := range ids {
			r, err := ask.Request[*containerizerv1.DestroyContainerResponse](ctx, sys.Root, cz,
				&containerizerv1.DestroyContainerRequest{ContainerId: &typesv1.ContainerID{Value: id}}, 5*time.Minute)
			if err != nil {
				fmt.Fprintf(os.Stderr, "berth: %v\n", err)
				status = 1
				continue
			}
			printTermination(id, r.GetTermination())
		}
		return status
	}
	return 2
}

func stateName(s containerizerv1.ContainerState) string {
	name := s.String()
	const prefix = "CONTAINER_STATE_"
	if len(name) > len(prefix) {
		return name[len(prefix):]
	}
	return name
}

// printTermination prints "ID: exit CODE (reason: message)" and returns the code.
func printTermination(id string, t *typesv1.Termination) int {
	msg := ""
	if t.GetMessage() != "" {
		msg = ": " + t.GetMessage()
	}
	fmt.Printf("%s: exit %s (%s%s)\n", id, strconv.Itoa(int(t.GetExitCode())), t.GetReason().String(), msg)
	return int(t.GetExitCode())
}
