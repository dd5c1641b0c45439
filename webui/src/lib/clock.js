// The server's clock. Deadlines such as a pending configuration's
// confirm_by are the server's times; a laptop whose clock is off by a
// minute would show a countdown that lies. Each API answer's Date header
// gives the offset (to the second, which is what a countdown needs).

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
