// The server's clock. Deadlines such as a pending configuration's
// confirm_by are the server's times; a laptop whose clock is off by a
// minute would show a countdown that lies. Each API answer's Date header
// gives a sample of the offset.

/** offsetFrom returns serverTime - localTime in ms from a Date header. */
export function offsetFrom(dateHeader, localMs) {
  const t = Date.parse(dateHeader || '');
  return Number.isFinite(t) ? t - localMs : null;
}

/**
 * remaining returns the whole seconds left until deadline (an RFC 3339
 * time of the server), given the local time and the server's offset; never
 * below zero.
 */
export function remaining(deadline, localMs, offsetMs = 0) {
  const t = Date.parse(deadline);
  if (!Number.isFinite(t)) return 0;
  return Math.max(0, Math.ceil((t - (localMs + (offsetMs || 0))) / 1000));
}

/**
 * ClockOffset estimates the server's clock minus ours from Date headers.
 * A Date header is the server's time cut down to the second and read here
 * a little later, so each sample is at most the true offset and up to a
 * second (plus the network's delay) below it. The largest recent sample is
 * therefore the best estimate, and it does not jump from one answer to
 * the next, which would make a countdown stutter.
 */
export class ClockOffset {
  constructor(windowMs = 60000) {
    this.windowMs = windowMs;
    this.samples = [];
  }

  /** add records a Date header read at localMs. */
  add(dateHeader, localMs) {
    const s = offsetFrom(dateHeader, localMs);
    if (s == null) return;
    this.samples.push([localMs, s]);
    while (this.samples.length > 0 && this.samples[0][0] < localMs - this.windowMs) this.samples.shift();
  }

  /** value is the estimate in ms, 0 without samples. */
  value() {
    return this.samples.length === 0 ? 0 : Math.max(...this.samples.map((x) => x[1]));
  }
}
