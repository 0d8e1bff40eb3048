package agent

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	// Every wire message type must be linked into every binary that may
	// receive it: the pinned protoactor crashes on an unknown type name.
	_ "github.com/berthrt/berth/messages/agent/v1"
	_ "github.com/berthrt/berth/messages/containerizer/v1"
	_ "github.com/berthrt/berth/messages/master/v1"
	_ "github.com/berthrt/berth/messages/provisioner/v1"
	_ "github.com/berthrt/berth/messages/store/v1"
	"github.com/berthrt/berth/process/errdefs"
)

// RemoteOptions secure the agent API.
type RemoteOptions struct {
	// Listen is host:port; port 0 picks one.
	Listen string
	// CertFile, KeyFile and CAFile turn on mutual TLS: both sides present a
	// certificate signed by the CA (with serverAuth and clientAuth usages).
	CertFile, KeyFile, CAFile string
	// PlaintextLoopback allows an unencrypted, unauthenticated API; only on a
	// loopback address.
	PlaintextLoopback bool
}

// StartRemote starts actor remoting on sys. Actors must be spawned after it,
// or their PIDs carry no address and remote replies to them are lost.
//
// Without certificates it refuses to start unless the operator asked for
// plaintext on a loopback address: anyone who can reach the port could
// otherwise run containers as root.
func StartRemote(sys *actor.ActorSystem, o RemoteOptions) (*remote.Remote, error) {
	host, portStr, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %v: %w", o.Listen, err, errdefs.ErrInvalidArgument)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("listen address %q: bad port: %w", o.Listen, errdefs.ErrInvalidArgument)
	}
	tlsOn := o.CertFile != "" || o.KeyFile != "" || o.CAFile != ""
	// A peer that sends a message type this binary does not link makes the
	// pinned protoactor panic in the gRPC handler; recover it into an error
	// for that stream, so a hostile or newer peer cannot kill the agent.
	serverOpts := []grpc.ServerOption{grpc.ChainStreamInterceptor(recoverStream)}
	var dial grpc.DialOption
	if tlsOn {
		serverTLS, clientTLS, err := mutualTLS(o)
		if err != nil {
			return nil, err
		}
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(serverTLS)))
		dial = grpc.WithTransportCredentials(credentials.NewTLS(clientTLS))
	} else {
		ip := net.ParseIP(host)
		if host == "localhost" {
			ip = net.IPv4(127, 0, 0, 1)
		}
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("refusing a plaintext agent API on %s: give --tls_cert, --tls_key and --tls_ca for mutual TLS, or listen on a loopback address: %w", o.Listen, errdefs.ErrFailedPrecondition)
		}
		if !o.PlaintextLoopback {
			return nil, fmt.Errorf("refusing a plaintext agent API without --plaintext_loopback (or give --tls_cert, --tls_key and --tls_ca): %w", errdefs.ErrFailedPrecondition)
		}
		dial = grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	opts := []remote.ConfigOption{remote.WithServerOptions(serverOpts...), remote.WithDialOptions(dial),
		// protoactor's default starts each peer's endpoint writer queue
		// with 1,000,000 slots (16 MB, per client that ever connects); the
		// queue grows by doubling when it fills, so a small start costs
		// nothing in throughput (heap profile of the agent, docs/operations.md).
		remote.WithEndpointWriterQueueSize(endpointWriterQueue)}
	// remote.Start panics when it cannot listen: check first, for a clear error.
	if l, err := net.Listen("tcp", o.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s: %v: %w", o.Listen, err, errdefs.ErrUnavailable)
	} else if err := l.Close(); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	r := remote.NewRemote(sys, remote.Configure(host, port, opts...))
	r.Start()
	return r, nil
}

// endpointWriterQueue is the initial size of a peer's outgoing queue.
const endpointWriterQueue = 1024

func recoverStream(srv interface{}, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = status.Errorf(codes.InvalidArgument, "malformed or unknown message: %v", p)
		}
	}()
	return handler(srv, ss)
}

func mutualTLS(o RemoteOptions) (server, client *tls.Config, err error) {
	if o.CertFile == "" || o.KeyFile == "" || o.CAFile == "" {
		return nil, nil, fmt.Errorf("mutual TLS needs all of --tls_cert, --tls_key and --tls_ca: %w", errdefs.ErrInvalidArgument)
	}
	cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("tls key pair: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	caPEM, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("tls ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("tls ca %s: no certificate in it: %w", o.CAFile, errdefs.ErrInvalidArgument)
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS13}
	return server, client, nil
}

// AgentPID and ContainerizerPID address a remote agent's actors.
func AgentPID(addr string) *actor.PID { return actor.NewPID(addr, "agent") }

// ContainerizerPID addresses a remote agent's containerizer.
func ContainerizerPID(addr string) *actor.PID { return actor.NewPID(addr, "agent/containerizer") }
