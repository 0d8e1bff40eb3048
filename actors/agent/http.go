package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/berthrt/berth/actors/metrics"
	"github.com/berthrt/berth/process/errdefs"
)

// HTTPOptions configure the agent's HTTP endpoint.
type HTTPOptions struct {
	// Addr is HOST:PORT to listen on (port 0: any free port).
	Addr string
	// AllowRemote serves on an address that is not loopback. pprof and the
	// metrics show the agent's internals to whoever can connect, so by
	// default only loopback addresses are accepted.
	AllowRemote bool
	// Metrics are served at /metrics (required).
	Metrics *metrics.Metrics
	Logger  *zap.Logger
}

// HTTPServer is the agent's HTTP endpoint: /health, /metrics (Prometheus
// text format) and /debug/pprof/. It runs beside the agent's actors and
// never sends them a message: everything it serves is read from atomics.
type HTTPServer struct {
	srv    *http.Server
	ln     net.Listener
	health atomic.Pointer[Health]
	m      *metrics.Metrics
	done   chan struct{}
}

// Health is the body of /health.
type Health struct {
	// Status is "ok" once the agent recovered, "recovering" before.
	Status     string `json:"status"`
	AgentID    string `json:"agent_id,omitempty"`
	Version    string `json:"version"`
	Containers int64  `json:"containers"`
}

// CheckHTTPAddr refuses an address that is not loopback unless allowRemote.
func CheckHTTPAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("HTTP address %q: %v: %w", addr, err, errdefs.ErrInvalidArgument)
	}
	if allowRemote || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("HTTP address %q is not loopback and the endpoint serves pprof and metrics; allow it explicitly (--http_allow_remote): %w",
		addr, errdefs.ErrPermissionDenied)
}

// ListenHTTP starts the endpoint; /health answers 503 until Ready.
func ListenHTTP(o HTTPOptions) (*HTTPServer, error) {
	if o.Metrics == nil {
		return nil, fmt.Errorf("HTTP endpoint: no metrics: %w", errdefs.ErrInvalidArgument)
	}
	if err := CheckHTTPAddr(o.Addr, o.AllowRemote); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("HTTP endpoint: %v: %w", err, errdefs.ErrUnavailable)
	}
	s := &HTTPServer{ln: ln, m: o.Metrics, done: make(chan struct{})}
	// No write timeout: /debug/pprof/profile streams for as long as asked.
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(o.Logger)}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Error("HTTP endpoint", zap.Error(err))
		}
	}()
	return s, nil
}

// Handler is the endpoint's mux. pprof's handlers are registered here, on
// the agent's own mux; the server never serves http.DefaultServeMux (on
// which importing net/http/pprof also registers them).
func (s *HTTPServer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.serveHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.Registry, promhttp.HandlerOpts{ErrorLog: nil}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Addr is the address the endpoint listens on.
func (s *HTTPServer) Addr() string { return s.ln.Addr().String() }

// Ready marks the agent as recovered: /health answers 200 from now on.
func (s *HTTPServer) Ready(a *Agent) {
	s.health.Store(&Health{Status: "ok", AgentID: a.ID, Version: Version})
}

func (s *HTTPServer) serveHealth(w http.ResponseWriter, _ *http.Request) {
	h := Health{Status: "recovering", Version: Version}
	code := http.StatusServiceUnavailable
	if ready := s.health.Load(); ready != nil {
		h, code = *ready, http.StatusOK
	}
	h.Containers = s.m.Containers()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(h)
}

// Close stops the endpoint, letting requests in progress finish until ctx
// ends.
func (s *HTTPServer) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	return err
}
