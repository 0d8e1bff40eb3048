package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/berthrt/berth/actors/agent"
	"github.com/berthrt/berth/actors/logging"
	"github.com/berthrt/berth/actors/metrics"
)

const agentSynopsis = `berth agent --listen=HOST:PORT [--tls_cert=F --tls_key=F --tls_ca=F | --plaintext_loopback]
             [--work_dir=DIR] [--runtime_dir=DIR] [--isolation=...] [--image_provisioner_backend=overlay|copy|bind|aufs]
             [--http=HOST:PORT [--http_allow_remote]] [--cpuprofile=FILE] [--memprofile=FILE]

Runs an agent that serves the agent API over actor remoting until SIGINT or
SIGTERM. Containers keep running when the agent stops; the next agent on the
same directories recovers them.

--http serves /health, /metrics (Prometheus) and /debug/pprof/ on a loopback
address (see docs/operations.md).`

// remoteFlags secure the API on both sides.
type remoteFlags struct {
	cert, key, ca     string
	plaintextLoopback bool
}

func (f *remoteFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cert, "tls_cert", "", "PEM certificate (serverAuth+clientAuth) for mutual TLS")
	fs.StringVar(&f.key, "tls_key", "", "PEM key of --tls_cert")
	fs.StringVar(&f.ca, "tls_ca", "", "PEM CA that signs the peers' certificates")
	fs.BoolVar(&f.plaintextLoopback, "plaintext_loopback", false, "allow an unencrypted API on a loopback address")
}

func (f *remoteFlags) options(listen string) agent.RemoteOptions {
	return agent.RemoteOptions{Listen: listen, CertFile: f.cert, KeyFile: f.key, CAFile: f.ca, PlaintextLoopback: f.plaintextLoopback}
}

func agentMain(args []string) int {
	fs := newFlagSet("agent", agentSynopsis)
	var af agentFlags
	af.register(fs)
	var rf remoteFlags
	rf.register(fs)
	var listen, backend, httpAddr string
	var httpAllowRemote bool
	var prof profileFlags
	prof.register(fs)
	fs.StringVar(&listen, "listen", "127.0.0.1:5051", "address of the agent API")
	fs.StringVar(&httpAddr, "http", "", "HOST:PORT of the HTTP endpoint (/health, /metrics, /debug/pprof/); empty: none")
	fs.BoolVar(&httpAllowRemote, "http_allow_remote", false, "allow --http on an address that is not loopback (it exposes pprof)")
	fs.StringVar(&backend, "image_provisioner_backend", "", "rootfs backend (default: the best available)")
	if err := fs.Parse(normalizeFlags(args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return 0
		}
		fmt.Fprintf(os.Stderr, "berth agent: %v\n", err)
		return 2
	}
	if af.logLevel == "warn" {
		af.logLevel = "info"
	}
	logger, err := af.logger()
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth agent: %v\n", err)
		return 2
	}
	defer func() { _ = logger.Sync() }()
	stopProfile, err := prof.start()
	if err != nil {
		logger.Error("profile", zap.Error(err))
		return 2
	}
	defer stopProfile()
	m := metrics.New(metrics.Options{})
	var web *agent.HTTPServer
	if httpAddr != "" {
		web, err = agent.ListenHTTP(agent.HTTPOptions{Addr: httpAddr, AllowRemote: httpAllowRemote, Metrics: m, Logger: logger})
		if err != nil {
			logger.Error("agent HTTP endpoint", zap.Error(err))
			return 1
		}
		defer func() { _ = web.Close(context.Background()) }()
		logger.Info("HTTP endpoint", zap.String("address", web.Addr()))
	}
	sys := actor.NewActorSystem(logging.SystemOption(logger))
	r, err := agent.StartRemote(sys, rf.options(listen))
	if err != nil {
		logger.Error("agent API", zap.Error(err))
		return 1
	}
	defer r.Shutdown(true)
	opts := af.options()
	opts.Backend = backend
	opts.Metrics = m
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	ag, err := agent.Start(ctx, sys, opts, logger)
	if err != nil {
		logger.Error("agent", zap.Error(err))
		return 1
	}
	if web != nil {
		web.Ready(ag)
	}
	logger.Info("agent ready", zap.String("address", sys.Address()), zap.String("agent_id", ag.ID))
	<-ctx.Done()
	logger.Info("agent stopping; containers keep running")
	ag.Stop()
	return 0
}

// dialAgent starts the client side of remoting: replies come back by the
// agent dialling us, so we listen on the local address that routes to it.
func dialAgent(addr string, rf remoteFlags) (*actor.ActorSystem, func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--agent %q: %w", addr, err)
	}
	local := "127.0.0.1"
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		// A UDP "connection" sends nothing; it only asks the kernel for the
		// source address it would use.
		c, err := net.Dial("udp", net.JoinHostPort(host, "9"))
		if err != nil {
			return nil, nil, fmt.Errorf("--agent %q: no route: %w", addr, err)
		}
		local = c.LocalAddr().(*net.UDPAddr).IP.String()
		_ = c.Close()
	}
	// The CLI reports a lost agent itself; protoactor's endpoint errors
	// (with stack traces) would only add noise.
	logger, _ := logging.New(logging.Options{Level: "fatal"})
	sys := actor.NewActorSystem(logging.SystemOption(logger))
	opts := rf.options(net.JoinHostPort(local, "0"))
	if opts.CertFile == "" && local == "127.0.0.1" {
		// Plaintext is only ever spoken on loopback, and the agent decides
		// whether it accepts it.
		opts.PlaintextLoopback = true
	}
	r, err := agent.StartRemote(sys, opts)
	if err != nil {
		return nil, nil, err
	}
	if err := awaitAgent(sys, addr); err != nil {
		r.Shutdown(false)
		return nil, nil, err
	}
	return sys, func() { r.Shutdown(false) }, nil
}
