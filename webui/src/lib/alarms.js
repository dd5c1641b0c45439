// Alarms on the overview: what an operator must act on, worst first.

/**
 * serving reports whether a replica can take over connections: up and not
 * disabled by an operator (a drained replica keeps serving what it has).
 */
export function serving(r) {
  return r.health === 'up' && r.admin !== 'disabled';
}

/**
 * redundancy sums up the replicas: how many can serve, of how many, and
 * whether that is intact (at least two serving), degraded (one) or down.
 */
export function redundancy(replicas) {
  const total = replicas.length;
  const healthy = replicas.filter(serving);
  let state = 'intact';
  if (healthy.length === 0) state = 'down';
  else if (healthy.length < 2) state = 'degraded';
  return { state, healthy: healthy.map((r) => r.name), total };
}

/**
 * computeAlarms returns [{level: 'crit'|'warn'|'info', id, text}] from the
 * status, the replicas and the recent events (newest last or any order).
 */
export function computeAlarms(status, replicas, events = []) {
  const out = [];
  if (!replicas) return out;
  const red = redundancy(replicas);
  if (red.total === 1) {
    out.push({ level: 'warn', id: 'single', text: 'Only one replica is configured: there is no redundancy.' });
  } else if (red.state === 'down') {
    out.push({ level: 'crit', id: 'redundancy', text: `No healthy replica: the service is down (0 of ${red.total}).` });
  } else if (red.state === 'degraded') {
    out.push({ level: 'crit', id: 'redundancy', text: `Redundancy degraded: only ${red.healthy[0]} is healthy (1 of ${red.total}). A further failure interrupts the service.` });
  }
  for (const r of replicas) {
    if (!r.port_present) out.push({ level: 'warn', id: `port-${r.name}`, text: `Replica ${r.name}: interface ${r.interface} is missing.` });
    else if (!r.carrier) out.push({ level: 'warn', id: `carrier-${r.name}`, text: `Replica ${r.name}: no link on ${r.interface}.` });
    else if (r.health !== 'up') out.push({ level: 'warn', id: `down-${r.name}`, text: `Replica ${r.name} is down${r.reason ? `: ${r.reason}` : ''}.` });
    if (r.admin === 'disabled') out.push({ level: 'info', id: `admin-${r.name}`, text: `Replica ${r.name} is disabled by an operator.` });
    if (r.admin === 'drained') out.push({ level: 'info', id: `admin-${r.name}`, text: `Replica ${r.name} is drained: it gets no new connections.` });
  }
  if (status && status.divergences > 0) {
    const last = events.filter((e) => e.kind === 'diverged').sort((a, b) => Date.parse(b.time) - Date.parse(a.time))[0];
    const where = last ? ` Last: replica ${last.replica || '?'} on ${last.conn || 'a connection'}.` : '';
    out.push({ level: 'warn', id: 'diverged', text: `Divergence seen: replicas answered differently ${status.divergences} time${status.divergences === 1 ? '' : 's'} since the dataplane started.${where}` });
  }
  if (status && status.config && status.config.pending) {
    out.push({ level: 'warn', id: 'pending', text: 'A configuration change awaits confirmation; it rolls back by itself unless confirmed.' });
  }
  const rank = { crit: 0, warn: 1, info: 2 };
  return out.sort((a, b) => rank[a.level] - rank[b.level]);
}
