package api

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ftbridge/ftbridge/dataplane/engine"
)

// metrics is the server's Prometheus registry: dataplane counters read at
// scrape time, and failover counts by replica pair fed from the event log.
type metrics struct {
	s         *Server
	reg       *prometheus.Registry
	handler   http.Handler
	failovers *prometheus.CounterVec
	stalls    prometheus.Histogram
	stop      func()
	done      sync.WaitGroup
}

func newMetrics(s *Server) *metrics {
	m := &metrics{s: s, reg: prometheus.NewRegistry()}
	m.failovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ftbridge_failover_events_total",
		Help: "Connection failovers by previous primary, new primary and reason.",
	}, []string{"from", "to", "reason"})
	m.stalls = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "ftbridge_failover_stall_seconds",
		Help: "Client-facing stall of each connection failover: from the last segment the client got before it to the first after it.",
		// 1 ms to about 8 s: detection by carrier or lone FIN/RST lands
		// in the first buckets, by stall_timeout near 0.3 s.
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	m.reg.MustRegister(m.failovers, m.stalls, &dataplaneCollector{s: s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	if s.o.Events != nil {
		ch, cancel := s.o.Events.Subscribe(1024)
		quit := make(chan struct{})
		m.stop = func() { close(quit); cancel() }
		m.done.Add(1)
		go func() {
			defer m.done.Done()
			for {
				select {
				case <-quit:
					return
				case ev := <-ch:
					switch ev.Kind {
					case "failover":
						m.failovers.WithLabelValues(ev.From, ev.Replica, ev.Reason).Inc()
					case "failover-done":
						m.stalls.Observe(ev.StallMS / 1000)
					}
				}
			}
		}()
	}
	return m
}

func (m *metrics) close() {
	if m.stop != nil {
		m.stop()
		m.done.Wait()
	}
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if ms := s.settings(); *ms.MetricsAuth {
		if s.identify(w, r) == nil {
			return
		}
	}
	s.metrics.handler.ServeHTTP(w, r)
}

var (
	descConnsActive = prometheus.NewDesc("ftbridge_connections_active", "Connections in the table.", nil, nil)
	descConnsOpened = prometheus.NewDesc("ftbridge_connections_opened_total", "Connections opened.", nil, nil)
	descConnsClosed = prometheus.NewDesc("ftbridge_connections_closed_total", "Connections closed.", nil, nil)
	descFailovers   = prometheus.NewDesc("ftbridge_failovers_total", "Connection failovers.", nil, nil)
	descDivergences = prometheus.NewDesc("ftbridge_divergences_total", "Replica output divergences.", nil, nil)
	descHeld        = prometheus.NewDesc("ftbridge_held_bytes", "Output held for slower replicas.", nil, nil)
	descProbes      = prometheus.NewDesc("ftbridge_probes_sent_total", "Health probes sent.", nil, nil)
	descEvDropped   = prometheus.NewDesc("ftbridge_events_dropped_total", "Dataplane events a slow subscriber missed.", nil, nil)
	descDrops       = prometheus.NewDesc("ftbridge_drops_total", "Frames dropped, by reason.", []string{"reason"}, nil)
	descRepUp       = prometheus.NewDesc("ftbridge_replica_up", "1 if the replica is healthy.", []string{"replica"}, nil)
	descRepAdmin    = prometheus.NewDesc("ftbridge_replica_admin", "The replica's operator setting (1 for the current one).", []string{"replica", "state"}, nil)
	descRepConns    = prometheus.NewDesc("ftbridge_replica_connections", "Live connections the replica is a member of.", []string{"replica"}, nil)
	descRepPrimary  = prometheus.NewDesc("ftbridge_replica_primary_of", "Connections the replica is primary of.", []string{"replica"}, nil)
	descRepRTT      = prometheus.NewDesc("ftbridge_replica_probe_rtt_seconds", "Last probe round-trip time.", []string{"replica"}, nil)
	descPortRxF     = prometheus.NewDesc("ftbridge_port_rx_frames_total", "Frames received.", []string{"port", "replica"}, nil)
	descPortTxF     = prometheus.NewDesc("ftbridge_port_tx_frames_total", "Frames sent.", []string{"port", "replica"}, nil)
	descPortRxB     = prometheus.NewDesc("ftbridge_port_rx_bytes_total", "Bytes received.", []string{"port", "replica"}, nil)
	descPortTxB     = prometheus.NewDesc("ftbridge_port_tx_bytes_total", "Bytes sent.", []string{"port", "replica"}, nil)
	descRestarts    = prometheus.NewDesc("ftbridge_dataplane_restarts_total", "In-process dataplane restarts for configuration changes.", nil, nil)
	descCfgVersion  = prometheus.NewDesc("ftbridge_config_version", "The applied configuration version.", nil, nil)
	descUp          = prometheus.NewDesc("ftbridge_dataplane_up", "1 if the dataplane loop answered the scrape.", nil, nil)
	descLoopConns   = prometheus.NewDesc("ftbridge_loop_connections", "Connections on each dataplane loop (how evenly the flow hash spreads them).", []string{"loop"}, nil)
)

// dataplaneCollector reads the dataplane at scrape time.
type dataplaneCollector struct{ s *Server }

func (c *dataplaneCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnsActive, descConnsOpened, descConnsClosed, descFailovers, descDivergences, descHeld,
		descProbes, descEvDropped, descDrops, descRepUp, descRepAdmin, descRepConns, descRepPrimary, descRepRTT,
		descPortRxF, descPortTxF, descPortRxB, descPortTxB, descRestarts, descCfgVersion, descUp, descLoopConns} {
		ch <- d
	}
}

func (c *dataplaneCollector) Collect(ch chan<- prometheus.Metric) {
	dp := c.s.o.Dataplane
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	ctr := dp.Counters()
	gauge(descConnsActive, float64(ctr.ActiveConns.Load()))
	counter(descConnsOpened, float64(ctr.ConnsOpened.Load()))
	counter(descConnsClosed, float64(ctr.ConnsClosed.Load()))
	counter(descFailovers, float64(ctr.Failovers.Load()))
	counter(descDivergences, float64(ctr.Divergences.Load()))
	gauge(descHeld, float64(ctr.HeldBytes.Load()))
	counter(descProbes, float64(ctr.ProbesSent.Load()))
	counter(descEvDropped, float64(ctr.EventsDropped.Load()))
	for reason, n := range ctr.DropCounts() {
		counter(descDrops, float64(n), reason)
	}
	counter(descRestarts, float64(dp.Restarts()))
	gauge(descCfgVersion, float64(c.s.o.Config.Current().Version))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	snap, err := dp.Snapshot(ctx, 0)
	if err != nil {
		gauge(descUp, 0)
		return
	}
	gauge(descUp, 1)
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for i, n := range snap.Loops {
		gauge(descLoopConns, float64(n), strconv.Itoa(i))
	}
	cur := c.s.o.Config.Current()
	counter(descPortRxF, float64(snap.Uplink.RxFrames), cur.Config.Uplink, "")
	counter(descPortTxF, float64(snap.Uplink.TxFrames), cur.Config.Uplink, "")
	counter(descPortRxB, float64(snap.Uplink.RxBytes), cur.Config.Uplink, "")
	counter(descPortTxB, float64(snap.Uplink.TxBytes), cur.Config.Uplink, "")
	for _, r := range snap.Replicas {
		gauge(descRepUp, b(r.Up), r.Name)
		for _, st := range []engine.Admin{engine.AdminEnabled, engine.AdminDrained, engine.AdminDisabled} {
			gauge(descRepAdmin, b(r.Admin == st.String()), r.Name, st.String())
		}
		gauge(descRepConns, float64(r.Conns), r.Name)
		gauge(descRepPrimary, float64(r.Primaries), r.Name)
		gauge(descRepRTT, r.ProbeRTT/1000, r.Name)
		counter(descPortRxF, float64(r.RxFrames), r.Interface, r.Name)
		counter(descPortTxF, float64(r.TxFrames), r.Interface, r.Name)
		counter(descPortRxB, float64(r.RxBytes), r.Interface, r.Name)
		counter(descPortTxB, float64(r.TxBytes), r.Interface, r.Name)
	}
}
