// The configuration form: between the JSON document the API speaks
// (docs/config.md) and the strings the form's inputs hold, the mapping of
// the API's field paths onto inputs, and the diff shown before applying.

/** The health settings the form edits, in order, with their defaults. */
export const HEALTH_FIELDS = [
  { key: 'interval', label: 'Probe interval', kind: 'duration', def: '20ms', help: 'Time between probe rounds on each replica port.' },
  { key: 'fail_after', label: 'Fail after', kind: 'int', def: '3', help: 'Missed probe rounds that mark a replica down.' },
  { key: 'rise_after', label: 'Rise after', kind: 'int', def: '5', help: 'Good probe rounds that bring a replica back.' },
  { key: 'stall_timeout', label: 'Stall timeout', kind: 'duration', def: '300ms', help: 'No progress while peers progress for this long fails a replica.' },
  { key: 'hold_down', label: 'Hold down', kind: 'duration', def: '3s', help: 'How long a stalled replica stays out of service.' },
];

/** toForm turns a document into the form's model: strings everywhere. */
export function toForm(doc) {
  const d = doc || {};
  const health = {};
  for (const f of HEALTH_FIELDS) health[f.key] = d.health && d.health[f.key] != null ? String(d.health[f.key]) : '';
  return {
    uplink: d.uplink || '',
    vip_mac: d.vip_mac || '',
    probe_source: d.probe_source || '',
    loops: d.loops != null ? String(d.loops) : '',
    replicas: (d.replicas || []).map((r) => ({ name: r.name || '', interface: r.interface || '' })),
    services: (d.services || []).map((s) => ({ address: s.address || '', ports: (s.ports || []).join(', '), release: s.release || '' })),
    health,
  };
}

/**
 * fromForm builds the document from the form on top of base (the current
 * document), so that sections the form does not show (limits, timers,
 * management) are kept as they are. Empty optional inputs are left out,
 * which means "default". It returns {doc, errors}: errors are
 * {field, message} for inputs that cannot be put in JSON at all (a port
 * that is not a number); everything else is left to the API's validation.
 */
export function fromForm(form, base) {
  const doc = structuredClone(base || {});
  const errors = [];
  doc.uplink = form.uplink.trim();
  for (const k of ['vip_mac', 'probe_source']) {
    const v = form[k].trim();
    if (v) doc[k] = v;
    else delete doc[k];
  }
  const loops = (form.loops || '').trim();
  if (!loops) delete doc.loops;
  else if (/^\d+$/.test(loops)) doc.loops = Number(loops);
  else errors.push({ field: 'loops', message: `"${loops}" is not a whole number` });
  doc.replicas = form.replicas.map((r) => ({ name: r.name.trim(), interface: r.interface.trim() }));
  doc.services = form.services.map((s, i) => {
    const out = { address: s.address.trim(), ports: [] };
    const parts = s.ports.split(/[\s,]+/).filter(Boolean);
    parts.forEach((p) => {
      if (/^\d+$/.test(p)) out.ports.push(Number(p));
      else errors.push({ field: `services[${i}].ports`, message: `"${p}" is not a port number` });
    });
    if (s.release) out.release = s.release;
    return out;
  });
  const health = { ...(doc.health || {}) };
  for (const f of HEALTH_FIELDS) {
    const v = (form.health[f.key] || '').trim();
    if (!v) {
      delete health[f.key];
    } else if (f.kind === 'int') {
      if (/^\d+$/.test(v)) health[f.key] = Number(v);
      else errors.push({ field: `health.${f.key}`, message: `"${v}" is not a whole number` });
    } else {
      health[f.key] = v;
    }
  }
  if (Object.keys(health).length > 0) doc.health = health;
  else delete doc.health;
  return { doc, errors };
}

/** formFields lists the field paths the form has inputs for. */
export function formFields(form) {
  const out = ['uplink', 'vip_mac', 'probe_source', 'loops'];
  form.replicas.forEach((_, i) => out.push(`replicas[${i}].name`, `replicas[${i}].interface`));
  form.services.forEach((_, i) => out.push(`services[${i}].address`, `services[${i}].ports`, `services[${i}].release`));
  for (const f of HEALTH_FIELDS) out.push(`health.${f.key}`);
  return out;
}

/**
 * fieldTarget maps a field path from an API error onto the input that
 * shows it: the input itself, else the nearest input that contains it
 * ("services[0].ports[1]" is shown at "services[0].ports"), else the first
 * input inside it ("replicas[1]" at "replicas[1].name"). null means the
 * error belongs to the form as a whole.
 */
export function fieldTarget(errField, fields) {
  if (!errField) return null;
  if (fields.includes(errField)) return errField;
  let best = null;
  for (const f of fields) {
    if (errField.startsWith(f) && /^[.[]/.test(errField.slice(f.length)) && (!best || f.length > best.length)) best = f;
  }
  if (best) return best;
  return fields.find((f) => f.startsWith(errField) && /^[.[]/.test(f.slice(errField.length))) || null;
}

/** flatten lists a JSON value's leaves as [path, value] in document order. */
export function flatten(v, path = '', out = []) {
  if (Array.isArray(v)) {
    if (v.length === 0) out.push([path, []]);
    v.forEach((x, i) => flatten(x, `${path}[${i}]`, out));
  } else if (v && typeof v === 'object') {
    const keys = Object.keys(v);
    if (keys.length === 0 && path) out.push([path, {}]);
    for (const k of keys) flatten(v[k], path ? `${path}.${k}` : k, out);
  } else {
    out.push([path, v]);
  }
  return out;
}

/**
 * diffDocs compares two documents leaf by leaf and returns
 * [{path, op: 'added'|'removed'|'changed', before, after}] in the new
 * document's order, removals after. Values are JSON texts.
 */
export function diffDocs(before, after) {
  const a = new Map(flatten(before).map(([p, v]) => [p, JSON.stringify(v)]));
  const b = flatten(after).map(([p, v]) => [p, JSON.stringify(v)]);
  const out = [];
  const seen = new Set();
  for (const [p, v] of b) {
    seen.add(p);
    if (!a.has(p)) out.push({ path: p, op: 'added', after: v });
    else if (a.get(p) !== v) out.push({ path: p, op: 'changed', before: a.get(p), after: v });
  }
  for (const [p, v] of a) if (!seen.has(p)) out.push({ path: p, op: 'removed', before: v });
  return out;
}

/**
 * restartsDataplane reports whether a diff touches anything but the
 * management section: applying it restarts the dataplane, which drops
 * every live connection (docs/api.md).
 */
export function restartsDataplane(diff) {
  return diff.some((d) => d.path !== 'management' && !d.path.startsWith('management.') && d.path !== 'version');
}
