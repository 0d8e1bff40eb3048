package launcher

import (
	"context"
	"fmt"
	"syscall"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/berthrt/berth/actors/ask"
	launcherv1 "github.com/berthrt/berth/messages/launcher/v1"
	typesv1 "github.com/berthrt/berth/messages/types/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// Actor serves a Launcher over launcherv1 messages. Every call runs off the
// mailbox: a fork or a wait never holds up the others.
type Actor struct {
	l      Launcher
	ctx    context.Context
	cancel context.CancelFunc
}

// Props returns the props of an actor serving l.
func Props(l Launcher) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		ctx, cancel := context.WithCancel(context.Background())
		return &Actor{l: l, ctx: ctx, cancel: cancel}
	})
}

// Receive dispatches the messages.
func (a *Actor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Stopping:
		a.cancel()
	case *launcherv1.ForkRequest:
		ask.Go(c, func() (proto.Message, error) {
			p, err := a.l.Fork(a.ctx, m.GetContainerId().GetValue(), m.GetSpec(), IO{StdoutPath: m.GetStdoutPath(), StderrPath: m.GetStderrPath()})
			if err != nil {
				return nil, err
			}
			return &launcherv1.ForkResponse{Pid: int32(p.Pid), StartTime: p.StartTime}, nil
		})
	case *launcherv1.ExecRequest:
		ask.Go(c, func() (proto.Message, error) {
			return &launcherv1.ExecResponse{}, a.l.Exec(a.ctx, m.GetContainerId().GetValue())
		})
	case *launcherv1.WaitProcessRequest:
		if w, ok := a.l.(exitNotifier); ok {
			sender, root := c.Sender(), c.ActorSystem().Root
			w.WaitFunc(m.GetContainerId().GetValue(), func(st ExitStatus, err error) {
				ask.Reply(root, sender, waitResponse(st), err)
			})
			return
		}
		ask.GoWait(c, func() (proto.Message, error) {
			st, err := a.l.Wait(a.ctx, m.GetContainerId().GetValue())
			return waitResponse(st), err
		})
	case *launcherv1.SignalProcessRequest:
		ask.Go(c, func() (proto.Message, error) {
			sig := syscall.Signal(m.GetSignal())
			if sig <= 0 || sig > 64 {
				return nil, fmt.Errorf("signal %d: %w", m.GetSignal(), errdefs.ErrInvalidArgument)
			}
			return &launcherv1.SignalProcessResponse{}, a.l.Signal(a.ctx, m.GetContainerId().GetValue(), sig)
		})
	case *launcherv1.DestroyProcessesRequest:
		ask.Go(c, func() (proto.Message, error) {
			existed, err := a.l.Destroy(a.ctx, m.GetContainerId().GetValue())
			return &launcherv1.DestroyProcessesResponse{Existed: existed}, err
		})
	case *launcherv1.RecoverLauncherRequest:
		ask.Go(c, func() (proto.Message, error) {
			known := make([]Known, 0, len(m.GetKnown()))
			for _, k := range m.GetKnown() {
				known = append(known, Known{
					ID:         k.GetContainerId().GetValue(),
					Process:    Process{Pid: int(k.GetPid()), StartTime: k.GetStartTime()},
					RuntimeDir: k.GetRuntimeDir(),
				})
			}
			alive, orphans, err := a.l.Recover(a.ctx, known)
			resp := &launcherv1.RecoverLauncherResponse{}
			for _, id := range alive {
				resp.Alive = append(resp.Alive, containerID(id))
			}
			for _, id := range orphans {
				resp.Orphans = append(resp.Orphans, containerID(id))
			}
			return resp, err
		})
	}
}

// exitNotifier is a Launcher that can call back on an init's exit instead
// of blocking a goroutine per waiter (Linux).
type exitNotifier interface {
	WaitFunc(id string, fn func(ExitStatus, error))
}

func waitResponse(st ExitStatus) *launcherv1.WaitProcessResponse {
	return &launcherv1.WaitProcessResponse{WaitStatus: int32(st.WaitStatus), HasWaitStatus: st.Known}
}

func containerID(id string) *typesv1.ContainerID { return &typesv1.ContainerID{Value: id} }
