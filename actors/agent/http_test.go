package agent_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/berthrt/berth/actors/agent"
	"github.com/berthrt/berth/actors/metrics"
	"github.com/berthrt/berth/process/errdefs"
)

func listen(t *testing.T, m *metrics.Metrics) *agent.HTTPServer {
	t.Helper()
	s, err := agent.ListenHTTP(agent.HTTPOptions{Addr: "127.0.0.1:0", Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// scrape parses /metrics as Prometheus's text format.
func scrape(t *testing.T, s *agent.HTTPServer) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, "http://"+s.Addr()+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not the text exposition format: %v\n%s", err, body)
	}
	return fams
}

// value is the counter, gauge or histogram count of the sample of name
// whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("/metrics has no %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("/metrics has no %s%v", name, want)
	return 0
}

func TestHTTPAddrMustBeLoopback(t *testing.T) {
	for _, c := range []struct {
		addr        string
		allowRemote bool
		ok          bool
	}{
		{"127.0.0.1:0", false, true},
		{"[::1]:5052", false, true},
		{"localhost:5052", false, true},
		{"0.0.0.0:5052", false, false},
		{":5052", false, false},
		{"192.0.2.1:5052", false, false},
		{"example.com:5052", false, false},
		{"0.0.0.0:5052", true, true},
	} {
		err := agent.CheckHTTPAddr(c.addr, c.allowRemote)
		if c.ok && err != nil || !c.ok && !errdefs.IsPermissionDenied(err) {
			t.Errorf("CheckHTTPAddr(%q, %v) = %v; want ok %v", c.addr, c.allowRemote, err, c.ok)
		}
	}
	if err := agent.CheckHTTPAddr("no-port", false); !errdefs.IsInvalidArgument(err) {
		t.Errorf("an address without a port: %v; want invalid argument", err)
	}
	// ListenHTTP refuses before listening.
	if _, err := agent.ListenHTTP(agent.HTTPOptions{Addr: "0.0.0.0:0", Metrics: metrics.New(metrics.Options{})}); !errdefs.IsPermissionDenied(err) {
		t.Errorf("ListenHTTP on 0.0.0.0 = %v; want permission denied", err)
	}
}

func TestHTTPHealthMetricsPprof(t *testing.T) {
	m := metrics.New(metrics.Options{})
	s := listen(t, m)
	base := "http://" + s.Addr()

	code, body := get(t, base+"/health")
	var h agent.Health
	if code != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &h) != nil || h.Status != "recovering" {
		t.Errorf("/health before the agent is ready: %d %s; want 503 recovering", code, body)
	}
	m.StateChange("", "RUNNING")
	s.Ready(&agent.Agent{ID: "agent-1"})
	code, body = get(t, base+"/health")
	if code != http.StatusOK || json.Unmarshal([]byte(body), &h) != nil || h != (agent.Health{Status: "ok", AgentID: "agent-1", Version: agent.Version, Containers: 1}) {
		t.Errorf("/health when ready: %d %s", code, body)
	}

	fams := scrape(t, s)
	if v := value(t, fams, "berth_containers", map[string]string{"state": "running"}); v != 1 {
		t.Errorf("berth_containers{state=running} = %v; want 1", v)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "berth_launches_total", "berth_image_imports_total"} {
		value(t, fams, name, nil)
	}

	code, body = get(t, base+"/debug/pprof/")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/: %d\n%s", code, body)
	}
	code, body = get(t, base+"/debug/pprof/heap?debug=1")
	if code != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Errorf("/debug/pprof/heap: %d\n%.200s", code, body)
	}
	// The server serves its own mux only: a handler on the default mux is
	// not reachable through it.
	defaultMuxOnce.Do(func() {
		http.DefaultServeMux.HandleFunc("/berth-test-default-mux", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "default") })
	})
	if code, _ := get(t, base+"/berth-test-default-mux"); code != http.StatusNotFound {
		t.Errorf("a path of http.DefaultServeMux answered %d on the agent's endpoint; want 404", code)
	}
	if code, _ := get(t, base+"/metrics/../health"); code == http.StatusInternalServerError {
		t.Errorf("a cleaned path broke the server")
	}
}

// defaultMuxOnce registers the test's handler on the process-wide default
// mux once, however often the test runs (-count).
var defaultMuxOnce sync.Once

// TestHTTPMetricsFollowALaunch: a real container from the built-in image
// moves the counters, histograms and the pipeline split.
func TestHTTPMetricsFollowALaunch(t *testing.T) {
	m := metrics.New(metrics.Options{})
	ag := startAgent(t, agent.Options{Metrics: m})
	s := listen(t, m)
	s.Ready(ag)
	before := scrape(t, s)
	if v := value(t, before, "berth_launches_total", map[string]string{"outcome": "ok"}); v != 0 {
		t.Fatalf("launches before any: %v", v)
	}
	for i, id := range []string{"berth-test-m1", "berth-test-m2"} {
		if term := runToEnd(t, ag, id, "/bin/true"); term.GetExitCode() != 0 {
			t.Fatalf("container %d: %v", i, term)
		}
	}
	fams := scrape(t, s)
	checks := []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"berth_launches_total", map[string]string{"outcome": "ok"}, 2},
		{"berth_destroys_total", map[string]string{"reason": "command_exited", "outcome": "ok"}, 2},
		{"berth_launch_duration_seconds", nil, 2},
		{"berth_destroy_duration_seconds", nil, 2},
		{"berth_launch_phase_duration_seconds", map[string]string{"phase": "provisioning"}, 2},
		{"berth_launch_phase_duration_seconds", map[string]string{"phase": "preparing"}, 2},
		{"berth_launch_phase_duration_seconds", map[string]string{"phase": "isolating"}, 2},
		{"berth_launch_phase_duration_seconds", map[string]string{"phase": "fetching"}, 2},
		{"berth_mechanic_duration_seconds", map[string]string{"request": "ForkRequest"}, 2},
		{"berth_mechanic_duration_seconds", map[string]string{"request": "ProvisionRootfsRequest"}, 2},
		{"berth_mechanic_duration_seconds", map[string]string{"request": "GetImageRequest"}, 2},
		{"berth_launch_split_seconds", map[string]string{"part": "messaging"}, 2},
		{"berth_image_imports_total", nil, 1},
		{"berth_image_layer_extractions_total", nil, 1},
	}
	for _, c := range checks {
		if v := value(t, fams, c.name, c.labels); v < c.min {
			t.Errorf("%s%v = %v; want at least %v", c.name, c.labels, v, c.min)
		}
	}
	mech := value(t, fams, "berth_pipeline_seconds_total", map[string]string{"pipeline": "launch", "part": "mechanics"})
	msg := value(t, fams, "berth_pipeline_seconds_total", map[string]string{"pipeline": "launch", "part": "messaging"})
	if mech <= 0 || msg <= 0 {
		t.Errorf("launch split: mechanics %v s, messaging %v s; want both > 0", mech, msg)
	}
	for _, st := range metrics.States {
		if v := value(t, fams, "berth_containers", map[string]string{"state": st}); v != 0 {
			t.Errorf("berth_containers{state=%s} = %v after every container ended", st, v)
		}
	}
}
