package metrics

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every Berth metric.
const Namespace = "berth"

// States are the containerizer's states, as the containers gauge labels
// them (lower case of the containerizer's names).
var States = []string{"starting", "provisioning", "preparing", "isolating", "fetching", "running", "destroying"}

// Phases are the launch phases with a duration histogram.
var Phases = []string{"provisioning", "preparing", "isolating", "fetching"}

// Metrics are one agent's collectors. A nil *Metrics records nothing, so
// components built without it (unit tests) need no checks.
type Metrics struct {
	// Registry holds Berth's collectors plus the Go runtime and process
	// collectors; the HTTP endpoint serves it.
	Registry *prometheus.Registry
	clock    *Clock

	containers      *prometheus.GaugeVec
	live            atomic.Int64
	launches        *prometheus.CounterVec
	destroys        *prometheus.CounterVec
	launchSeconds   prometheus.Histogram
	destroySeconds  prometheus.Histogram
	phaseSeconds    *prometheus.HistogramVec
	mechanicSeconds *prometheus.HistogramVec
	split           *prometheus.CounterVec
	launchSplit     *prometheus.HistogramVec
	launchShare     prometheus.Histogram
	// images reads the image store's counters (nil: none yet).
	images atomic.Pointer[func() (imports, extractions int64)]
	// totals are launches [0] and destroys [1], in nanoseconds.
	totals [2]struct{ n, mechanics, messaging atomic.Int64 }

	// lookups caches label children so that the hot path does not build
	// label slices: state and phase names as the containerizer spells
	// them, and request names.
	gauges, phases, mechanics sync.Map
}

// Options configure New.
type Options struct {
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// NoProcessCollectors leaves out the Go runtime and process collectors
	// (for registries that already have them).
	NoProcessCollectors bool
}

// latencyBuckets span 50 µs to about 100 s.
var latencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 22)

// New returns an agent's collectors, registered in a fresh registry.
func New(o Options) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry(), clock: NewClock(o.Now)}
	m.containers = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "containers",
		Help: "Containers the containerizer tracks, by state.",
	}, []string{"state"})
	m.launches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "launches_total",
		Help: "Launches answered, by outcome: ok, or the error class of the failure.",
	}, []string{"outcome"})
	m.destroys = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "destroys_total",
		Help: "Containers destroyed, by termination reason and outcome (ok, or cleanup_failed when a cleanup step failed).",
	}, []string{"reason", "outcome"})
	m.launchSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "launch_duration_seconds",
		Help: "Launch request to answer (the command released), successful launches.", Buckets: latencyBuckets,
	})
	m.destroySeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "destroy_duration_seconds",
		Help: "Start of a destroy to the termination being answered.", Buckets: latencyBuckets,
	})
	m.phaseSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "launch_phase_duration_seconds",
		Help: "Time containers spent in each launch phase (preparing includes the fork, fetching the release of the command).", Buckets: latencyBuckets,
	}, []string{"phase"})
	m.mechanicSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "mechanic_duration_seconds",
		Help: "Blocking calls run off the actors' mailboxes, by request (async: checkpoints and directories).", Buckets: latencyBuckets,
	}, []string{"request"})
	m.split = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "pipeline_seconds_total",
		Help: "Wall time of launches and destroys, split into mechanics (blocking calls running) and messaging (everything else: mailboxes, dispatch, replies, actor logic).",
	}, []string{"pipeline", "part"})
	m.launchSplit = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "launch_split_seconds",
		Help: "Per successful launch, the time in mechanics and in messaging.", Buckets: latencyBuckets,
	}, []string{"part"})
	m.launchShare = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "launch_messaging_ratio",
		Help:    "Per successful launch, messaging time over launch time.",
		Buckets: []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1},
	})
	m.Registry.MustRegister(m.containers, m.launches, m.destroys, m.launchSeconds, m.destroySeconds,
		m.phaseSeconds, m.mechanicSeconds, m.split, m.launchSplit, m.launchShare)
	imageCounter := func(name, help string, pick func(imports, extractions int64) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, func() float64 {
			if f := m.images.Load(); f != nil {
				return float64(pick((*f)()))
			}
			return 0
		})
	}
	m.Registry.MustRegister(
		imageCounter("image_imports_total", "Images imported into the store's cache: registry pulls and archive or layout imports (cached Gets are not counted).",
			func(i, _ int64) int64 { return i }),
		imageCounter("image_layer_extractions_total", "Layers extracted into the store's cache.",
			func(_, e int64) int64 { return e }))
	if !o.NoProcessCollectors {
		m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, s := range States {
		m.containers.WithLabelValues(s)
	}
	for _, p := range Phases {
		m.phaseSeconds.WithLabelValues(p)
	}
	m.launches.WithLabelValues("ok")
	for _, pipeline := range []string{"launch", "destroy"} {
		for _, part := range []string{"mechanics", "messaging"} {
			m.split.WithLabelValues(pipeline, part)
		}
	}
	return m
}

// Clock is the mechanics clock (nil for a nil Metrics).
func (m *Metrics) Clock() *Clock {
	if m == nil {
		return nil
	}
	return m.clock
}

// Mark reads the mechanics clock; the zero Mark for a nil Metrics.
func (m *Metrics) Mark() Mark {
	if m == nil {
		return Mark{}
	}
	return m.clock.Mark()
}

// Begin starts timing a mechanic.
func (m *Metrics) Begin() time.Time {
	if m == nil {
		return time.Time{}
	}
	return m.clock.Begin()
}

// End ends timing the mechanic of request begun at start.
func (m *Metrics) End(request string, start time.Time) {
	if m == nil {
		return
	}
	d := m.clock.End(start)
	h, ok := m.mechanics.Load(request)
	if !ok {
		h, _ = m.mechanics.LoadOrStore(request, m.mechanicSeconds.WithLabelValues(request))
	}
	h.(prometheus.Observer).Observe(d.Seconds())
}

// lower caches the label child of name (in the containerizer's spelling).
func lower[T any](cache *sync.Map, name string, child func(string) T) T {
	if v, ok := cache.Load(name); ok {
		return v.(T)
	}
	v, _ := cache.LoadOrStore(name, child(strings.ToLower(name)))
	return v.(T)
}

// StateChange moves a container between states in the containers gauge;
// "" is no state (a container appearing or leaving).
func (m *Metrics) StateChange(from, to string) {
	if m == nil {
		return
	}
	gauge := func(s string) prometheus.Gauge { return m.containers.WithLabelValues(s) }
	if from != "" {
		lower(&m.gauges, from, gauge).Dec()
	} else {
		m.live.Add(1)
	}
	if to != "" {
		lower(&m.gauges, to, gauge).Inc()
	} else {
		m.live.Add(-1)
	}
}

// Containers is how many containers the containerizer tracks.
func (m *Metrics) Containers() int64 {
	if m == nil {
		return 0
	}
	return m.live.Load()
}

// Phase records the time a container spent in a launch phase.
func (m *Metrics) Phase(state string, d time.Duration) {
	if m == nil {
		return
	}
	lower(&m.phases, state, func(s string) prometheus.Observer { return m.phaseSeconds.WithLabelValues(s) }).Observe(d.Seconds())
}

// Launched records a launch answered: outcome "ok" or an error class, the
// launch's wall time and how much of it mechanics ran.
func (m *Metrics) Launched(outcome string, total, mechanics time.Duration) {
	if m == nil {
		return
	}
	m.launches.WithLabelValues(outcome).Inc()
	m.addSplit("launch", total, mechanics)
	if outcome != "ok" {
		return
	}
	m.launchSeconds.Observe(total.Seconds())
	m.launchSplit.WithLabelValues("mechanics").Observe(mechanics.Seconds())
	m.launchSplit.WithLabelValues("messaging").Observe((total - mechanics).Seconds())
	if total > 0 {
		m.launchShare.Observe(float64(total-mechanics) / float64(total))
	}
}

// Destroyed records a destroy finished.
func (m *Metrics) Destroyed(reason, outcome string, total, mechanics time.Duration) {
	if m == nil {
		return
	}
	m.destroys.WithLabelValues(reason, outcome).Inc()
	m.destroySeconds.Observe(total.Seconds())
	m.addSplit("destroy", total, mechanics)
}

func (m *Metrics) addSplit(pipeline string, total, mechanics time.Duration) {
	t := &m.totals[0]
	if pipeline == "destroy" {
		t = &m.totals[1]
	}
	t.n.Add(1)
	t.mechanics.Add(int64(mechanics))
	t.messaging.Add(int64(total - mechanics))
	m.split.WithLabelValues(pipeline, "mechanics").Add(mechanics.Seconds())
	m.split.WithLabelValues(pipeline, "messaging").Add((total - mechanics).Seconds())
}

// Totals are the cumulative pipeline times, as pipeline_seconds_total
// counts them, and the number of launches and destroys.
type Totals struct {
	Launches, Destroys                                                   int64
	LaunchMechanics, LaunchMessaging, DestroyMechanics, DestroyMessaging time.Duration
}

// Totals reads the cumulative pipeline times.
func (m *Metrics) Totals() Totals {
	if m == nil {
		return Totals{}
	}
	return Totals{
		Launches: m.totals[0].n.Load(), Destroys: m.totals[1].n.Load(),
		LaunchMechanics: time.Duration(m.totals[0].mechanics.Load()), LaunchMessaging: time.Duration(m.totals[0].messaging.Load()),
		DestroyMechanics: time.Duration(m.totals[1].mechanics.Load()), DestroyMessaging: time.Duration(m.totals[1].messaging.Load()),
	}
}

// SetImageStats makes stats the source of the image counters (the docker
// store's Stats); the latest call wins, so a restarted agent's store
// replaces the old one.
func (m *Metrics) SetImageStats(stats func() (imports, extractions int64)) {
	if m == nil {
		return
	}
	m.images.Store(&stats)
}

// MustRegister adds collectors of other components (the image store's
// counters) to the registry.
func (m *Metrics) MustRegister(cs ...prometheus.Collector) {
	if m == nil {
		return
	}
	m.Registry.MustRegister(cs...)
}
