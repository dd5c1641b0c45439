// Live chart series built from polled counters. The API reports byte
// counters; the charts show rates, so each new sample is turned into a
// rate against the previous one. A counter that goes backwards (the
// dataplane restarted after a configuration change) or a long gap between
// samples (the tab slept) breaks the line instead of drawing a bogus spike.

/**
 * Series keeps the last `capacity` samples of the uplink's traffic and the
 * connection count. Times are seconds since the epoch, as uPlot wants.
 */
export class Series {
  constructor(capacity = 150, maxGap = 15, minStep = 1) {
    this.capacity = capacity;
    this.maxGap = maxGap;
    // Samples closer than minStep seconds to the previous one (an extra
    // poll after an event) are skipped: a rate over a few milliseconds
    // is noise.
    this.minStep = minStep;
    this.t = [];
    this.rxRate = [];
    this.txRate = [];
    this.conns = [];
    this.prev = null;
  }

  /**
   * push adds one sample: t in seconds, rx and tx the uplink's byte
   * counters (rx: from clients, tx: to clients), conns the connection
   * count. It returns false for a sample it skipped: not newer than the
   * last by minStep.
   */
  push(t, rx, tx, conns) {
    const p = this.prev;
    if (p && t - p.t < this.minStep) return false;
    let rxRate = null;
    let txRate = null;
    if (p && t - p.t <= this.maxGap && rx >= p.rx && tx >= p.tx) {
      rxRate = (rx - p.rx) / (t - p.t);
      txRate = (tx - p.tx) / (t - p.t);
    }
    this.prev = { t, rx, tx };
    this.t.push(t);
    this.rxRate.push(rxRate);
    this.txRate.push(txRate);
    this.conns.push(conns);
    if (this.t.length > this.capacity) {
      for (const a of [this.t, this.rxRate, this.txRate, this.conns]) a.shift();
    }
    return true;
  }

  /** throughput returns uPlot data: times, bytes/s from and to clients. */
  throughput() {
    return [this.t.slice(), this.rxRate.slice(), this.txRate.slice()];
  }

  /** connections returns uPlot data: times and connection counts. */
  connections() {
    return [this.t.slice(), this.conns.slice()];
  }

  /** latest returns the newest rates, or nulls. */
  latest() {
    const n = this.t.length;
    return n === 0 ? { rx: null, tx: null, conns: null } : { rx: this.rxRate[n - 1], tx: this.txRate[n - 1], conns: this.conns[n - 1] };
  }
}
