// zoku dashboard: reads the admin API with the bearer token and redraws
// every 5 seconds. Data is shown with textContent only (names and errors
// come from configs and CAs, never trusted as HTML). The banner is never
// green while a certificate is expired or expiring, or while the data is
// stale (traefik#12126 showed green with expired certificates).
'use strict';

const REFRESH_MS = 5000;
// The fleet view reads storage for every certificate shown: read it every
// third refresh (nodes publish every 10 s anyway).
const FLEET_MS = 15000;
let fleetAt = 0, lastFleet = null;
const STALE_MS = 3 * REFRESH_MS;
const KEY = 'zokuToken';
let lastOK = 0;

function readToken() {
  const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY) || '';
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'style') Object.assign(e.style, v);
    else e.setAttribute(k, v);
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined || k === '') continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

// fmtTime writes a time as "2026-11-23 14:05 UTC", the same everywhere.
function fmtTime(s) {
  if (!s) return '';
  return new Date(s).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

// fmtIn writes a duration in seconds as "in 3 days" / "2 hours ago".
function fmtIn(sec) {
  const a = Math.abs(sec);
  let n, u;
  if (a >= 2 * 86400) { n = Math.floor(a / 86400); u = 'days'; }
  else if (a >= 2 * 3600) { n = Math.floor(a / 3600); u = 'hours'; }
  else if (a >= 120) { n = Math.floor(a / 60); u = 'minutes'; }
  else { n = Math.floor(a); u = 'seconds'; }
  return sec >= 0 ? `in ${n} ${u}` : `${n} ${u} ago`;
}

async function api(path, token) {
  const r = await fetch('/api/v1/' + path, { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' });
  if (r.status === 401) { const e = new Error('unauthorized'); e.unauthorized = true; throw e; }
  const body = await r.json();
  if (!r.ok) { const e = new Error(body.detail || r.statusText); e.status = r.status; throw e; }
  return body;
}

function fill(table, rows, cols, emptyText) {
  const tb = document.querySelector(`#${table} tbody`);
  tb.replaceChildren(...(rows.length ? rows : [el('tr', {}, el('td', { class: 'empty', colspan: cols }, emptyText))]));
}

function timeline(c, now) {
  const start = Date.parse(c.notBefore), end = Date.parse(c.notAfter);
  const span = end - start;
  const pos = t => Math.max(0, Math.min(100, (t - start) / span * 100)) + '%';
  const bar = el('div', { class: 'timeline', title: `${fmtTime(c.notBefore)} → ${fmtTime(c.notAfter)}` },
    el('div', { class: 'used', style: { width: pos(now) } }));
  if (c.renewalWindow) {
    const a = Date.parse(c.renewalWindow.start), b = Date.parse(c.renewalWindow.end);
    bar.append(el('div', { class: 'ari', title: `ARI window ${fmtTime(c.renewalWindow.start)} – ${fmtTime(c.renewalWindow.end)}`,
      style: { left: pos(a), width: `calc(${pos(b)} - ${pos(a)})` } }));
  }
  if (c.nextRenewal) {
    bar.append(el('div', { class: 'next', title: `next renewal ${fmtTime(c.nextRenewal)}`, style: { left: pos(Date.parse(c.nextRenewal)) } }));
  }
  bar.append(el('div', { class: 'now', title: 'now', style: { left: pos(now) } }));
  return bar;
}

function certRow(c, now) {
  const expires = c.notAfter
    ? [el('div', { class: 'expiry' }, fmtTime(c.notAfter)), el('div', { class: 'muted' }, c.expiresInSeconds <= 0 ? 'expired ' + fmtIn(c.expiresInSeconds) : 'expires ' + fmtIn(c.expiresInSeconds))]
    : [el('span', { class: 'muted' }, c.pending ? 'ordering…' : 'no certificate')];
  const state = [el('span', { class: 'state ' + c.state }, c.state)];
  if (c.failures) state.push(el('div', { class: 'muted' }, `${c.failures} failed, retry ${fmtTime(c.retryAt)}`));
  if (c.lastError) state.push(el('div', { class: 'err' }, c.lastError));
  const used = [...c.usedBy.routes.map(r => 'route ' + r), ...c.usedBy.targets.map(t => 'target ' + t)];
  return el('tr', { class: c.state, 'data-cert': c.name },
    el('td', {}, el('strong', {}, c.name), c.domains.length > 1 ? el('div', { class: 'muted' }, c.domains.join(', ')) : null),
    el('td', {}, state),
    el('td', {}, expires),
    el('td', {}, c.notAfter ? timeline(c, now) : null),
    el('td', {}, c.nextRenewal ? [fmtTime(c.nextRenewal), el('div', { class: 'muted' }, c.nextRenewalReason)] : ''),
    el('td', {}, c.issuer || '', c.serial ? el('div', { class: 'muted' }, c.serial) : null),
    el('td', {}, used.join(', ')));
}

function banner(certs, fleet) {
  const b = document.getElementById('banner');
  const count = s => certs.filter(c => c.state === s).length;
  const bad = count('expired') + count('expiring') + count('missing');
  const warn = count('failing');
  let cls = 'ok', text = `all ${certs.length} certificates valid`;
  if (bad) { cls = 'bad'; text = ['expired', 'expiring', 'missing', 'failing'].filter(s => count(s)).map(s => `${count(s)} ${s}`).join(', '); }
  else if (warn) { cls = 'warn'; text = `${warn} renewal${warn > 1 ? 's' : ''} failing`; }
  else if (!certs.length) { cls = 'unknown'; text = 'no managed certificates'; }
  // The fleet: a stale node or a node serving an older certificate than
  // stored is never green.
  const fs = fleet && !fleet.error && fleet.summary;
  const trouble = fs ? [[fs.stale, 'node stale', 'nodes stale'], [fs.behind, 'node behind storage', 'nodes behind storage'],
    [fs.targetsBehind, 'target behind storage', 'targets behind storage']].filter(([n]) => n > 0) : [];
  if (trouble.length) {
    if (cls === 'ok' || cls === 'unknown') { cls = 'warn'; text = ''; }
    text = [text, ...trouble.map(([n, one, many]) => `${n} ${n > 1 ? many : one}`)].filter(Boolean).join(', ');
  }
  b.className = 'banner ' + cls;
  b.textContent = text;
}

// shortSerial keeps a serial readable in a grid cell; the title has it all.
function shortSerial(s) { return s && s.length > 12 ? s.slice(0, 12) + '…' : (s || ''); }

const CELL_WORDS = { current: 'current', behind: 'behind storage', ahead: 'not the stored one (newer)', differs: 'not the stored one', none: 'serves none', unknown: 'nothing stored to compare' };

function fleetCell(c, nodeState, lockHolder) {
  const title = [`${c.node}: ${CELL_WORDS[c.state] || c.state}`, c.serial ? 'serial ' + c.serial : '',
    c.notAfter ? 'expires ' + fmtTime(c.notAfter) : '', c.nextRenewal ? `next renewal ${fmtTime(c.nextRenewal)} (${c.nextRenewalReason})` : '',
    c.failures ? `${c.failures} failed, retry ${fmtTime(c.retryAt)}` : '', nodeState !== 'live' ? 'node ' + nodeState : ''].filter(Boolean).join('\n');
  return el('td', { class: `cell ${c.state} node-${nodeState}`, 'data-node': c.node, title },
    c.serial ? shortSerial(c.serial) : (c.state === 'none' ? 'none' : ''),
    c.state === 'behind' ? el('div', {}, 'behind') : null,
    lockHolder === c.node ? el('div', {}, el('span', { class: 'lock' }, 'lock: ordering')) : null,
    c.nextRenewal ? el('div', { class: 'muted' }, 'next ' + fmtTime(c.nextRenewal)) : null,
    c.failures ? el('div', { class: 'muted' }, `${c.failures} failed`) : null,
    c.lastError ? el('div', { class: 'err' }, c.lastError) : null);
}

function renderFleet(f) {
  const sec = document.getElementById('fleet');
  if (!f) { sec.hidden = true; return; }
  sec.hidden = false;
  if (f.error) {
    document.getElementById('fleet-summary').replaceChildren(el('div', { class: 'err' }, 'cannot read the fleet: ' + f.error));
    return;
  }
  const s = f.summary;
  document.getElementById('fleet-count').textContent = `(${s.nodes} node${s.nodes === 1 ? '' : 's'})`;
  const parts = [`${s.live} live`, s.stale ? `${s.stale} stale` : '', s.stopped ? `${s.stopped} stopped` : '',
    `${s.certificates} certificates`, s.serialsDiffer ? `${s.serialsDiffer} served with different serials` : '',
    s.behind ? `${s.behind} behind storage` : '', s.failing ? `${s.failing} failing` : '', s.locked ? `${s.locked} being ordered` : '',
    f.locks !== 'checked' ? `locks ${f.locks}` : ''];
  document.getElementById('fleet-summary').replaceChildren(parts.filter(Boolean).join(' · '),
    ...f.warnings.map(w => el('div', { class: 'err' }, w)));

  const nodeState = {};
  for (const n of f.nodes) nodeState[n.id] = n.state;
  fill('nodes', f.nodes.map(n => el('tr', { class: 'node ' + n.state, 'data-node': n.id },
    el('td', {}, el('strong', {}, n.id), n.self ? el('span', { class: 'muted' }, ' (this node)') : null,
      n.readError ? el('div', { class: 'err' }, n.readError) : null),
    el('td', {}, el('span', { class: 'state ' + n.state }, n.state)),
    el('td', {}, n.heartbeat ? [fmtTime(n.heartbeat), el('div', { class: 'muted' }, n.heartbeatAgeSeconds < 2 ? 'just now' : fmtIn(-n.heartbeatAgeSeconds))] : ''),
    el('td', {}, String(n.certificates), n.failing ? el('div', { class: 'err' }, `${n.failing} failing`) : null),
    el('td', {}, n.version || ''), el('td', {}, fmtTime(n.started)), el('td', {}, n.adminUrl || ''))), 7, 'no nodes');

  const ids = f.nodes.map(n => n.id);
  const grid = document.getElementById('fleet-grid');
  grid.tHead.replaceChildren(el('tr', {}, el('th', {}, 'Certificate'), el('th', {}, 'Stored'), el('th', {}, 'Lock holder'),
    ...ids.map(id => el('th', { class: 'node-' + nodeState[id] }, id))));
  // Trouble first: disagreement, a lock held, a failure; then by name.
  const rank = c => (c.agree ? 0 : 4) + (c.lockHolder ? 2 : 0) + (c.nodes.some(x => x.failures) ? 1 : 0);
  const certs = f.certificates.slice().sort((x, y) => rank(y) - rank(x) || x.name.localeCompare(y.name));
  fill('fleet-grid', certs.map(c => {
    const byNode = {};
    for (const x of c.nodes) byNode[x.node] = x;
    const st = c.stored;
    return el('tr', { class: c.agree ? 'agree' : 'disagree', 'data-fleet-cert': c.name },
      el('td', {}, el('strong', {}, c.name)),
      el('td', { class: 'cell', title: st ? `serial ${st.serial}\nexpires ${fmtTime(st.notAfter)}` : '' },
        st ? [shortSerial(st.serial), el('div', { class: 'muted' }, `stored ${fmtTime(st.storedAt)}${st.storedBy ? ' by ' + st.storedBy : ''}`),
          st.lastError ? el('div', { class: 'err' }, st.lastError) : null] : el('span', { class: 'muted' }, 'nothing stored'),
        c.storedError ? el('div', { class: 'err' }, c.storedError) : null),
      el('td', {}, c.lockHolder ? el('span', { class: 'lock' }, c.lockHolder) : ''),
      ...ids.map(id => byNode[id] ? fleetCell(byNode[id], nodeState[id], c.lockHolder) : el('td', { class: 'cell node-' + nodeState[id] }, '')));
  }), 3 + ids.length, 'no certificates on any node');
  document.getElementById('fleet-more').textContent = f.next ? `showing ${s.shown} of ${s.certificates} certificates (GET /api/v1/fleet?after=… pages through the rest)` : '';

  const tg = document.getElementById('fleet-targets');
  tg.hidden = !f.targets.length;
  tg.tHead.replaceChildren(el('tr', {}, el('th', {}, 'Target'), ...ids.map(id => el('th', { class: 'node-' + nodeState[id] }, id))));
  fill('fleet-targets', f.targets.map(t => {
    const byNode = {};
    for (const x of t.nodes) byNode[x.node] = x;
    return el('tr', { 'data-fleet-target': t.name }, el('td', {}, el('strong', {}, t.name)),
      ...ids.map(id => {
        const x = byNode[id];
        if (!x) return el('td', { class: 'cell node-' + nodeState[id] }, '');
        return el('td', { class: `cell ${x.state} node-${nodeState[id]}`, 'data-node': id, title: x.servedSerial ? 'serving ' + x.servedSerial : '' },
          x.lastResult ? el('span', { class: 'state ' + x.lastResult }, x.lastResult) : el('span', { class: 'muted' }, 'never deployed'),
          x.lastDeploy ? el('div', { class: 'muted' }, fmtTime(x.lastDeploy)) : null,
          x.state === 'behind' ? el('div', {}, 'behind storage') : null,
          x.lastError ? el('div', { class: 'err' }, x.lastError) : null);
      }));
  }), 1 + ids.length, 'no targets');
}

// fleetOf reads the fleet view: null when this process has none (503),
// {error} when it could not be read.
async function fleetOf(token) {
  try {
    return await api('fleet?limit=500', token);
  } catch (e) {
    if (e.unauthorized) throw e;
    return e.status === 503 ? null : { error: e.message };
  }
}

function stale(msg) {
  const b = document.getElementById('banner');
  b.className = 'banner bad';
  b.textContent = 'cannot read the API: ' + msg + (lastOK ? ' (data below is from ' + new Date(lastOK).toLocaleTimeString() + ')' : '');
}

async function refresh() {
  const token = readToken();
  const login = document.getElementById('login');
  if (!token) { login.hidden = false; stale('no token'); return; }
  try {
    const fleetDue = Date.now() - fleetAt >= FLEET_MS;
    const [c, r, s, t, tcp, f] = await Promise.all([...['certificates', 'routes', 'services', 'targets', 'tcp'].map(p => api(p, token)),
      fleetDue ? fleetOf(token) : Promise.resolve(lastFleet)]);
    if (fleetDue) { fleetAt = Date.now(); lastFleet = f; }
    const now = Date.parse(c.now);
    login.hidden = true;
    // Worst first, then soonest expiry: trouble is at the top.
    const rank = ['expired', 'expiring', 'missing', 'failing', 'pending', 'valid'];
    const exp = v => v.notAfter ? Date.parse(v.notAfter) : Infinity;
    const certs = c.certificates.slice().sort((x, y) => rank.indexOf(x.state) - rank.indexOf(y.state) ||
      exp(x) - exp(y) || x.name.localeCompare(y.name));
    fill('certs', certs.map(x => certRow(x, now)), 7, 'no managed certificates');
    document.getElementById('cert-count').textContent = `(${c.certificates.length})`;
    fill('routes', r.routes.map(x => el('tr', {}, el('td', {}, x.name), el('td', {}, x.host || '*'), el('td', {}, x.pathPrefix || '/'),
      el('td', {}, (x.matchers || []).map(m => el('div', {}, m))), el('td', {}, (x.middlewares || []).join(' → ')),
      el('td', {}, x.service), el('td', {}, (x.entryPoints || []).join(', ')))), 7, 'no routes');
    fill('services', s.services.map(x => {
      const up = x.servers.filter(v => v.up).length;
      let health;
      if (x.static) health = el('span', { class: 'state ok' }, 'static');
      else if (x.services && x.services.length) health = el('span', { class: 'state ' + (x.up ? 'ok' : 'down') }, x.kind + (x.up ? '' : ': down'));
      else health = el('span', { class: 'state ' + (up === x.servers.length ? 'ok' : up ? 'failing' : 'down') }, `${up}/${x.servers.length} up`);
      const members = x.services && x.services.length ? x.services.map(n => el('div', {}, '→ ' + n)) : x.servers.map(v =>
        el('div', { title: v.lastError || '' }, el('span', { class: 'dot ' + (v.up ? 'up' : 'down') }), v.url, v.lastError ? el('span', { class: 'err' }, ' ' + v.lastError) : null));
      return el('tr', {}, el('td', {}, x.name), el('td', {}, health), el('td', {}, members));
    }), 3, 'no services');
    fill('tcp-routes', tcp.routes.map(x => el('tr', {}, el('td', {}, x.name), el('td', {}, x.sni), el('td', {}, x.tls),
      el('td', {}, x.service), el('td', {}, x.entryPoints.join(', ')))), 5, 'no TCP routes');
    fill('tcp-services', tcp.services.map(x => {
      const up = x.servers.filter(v => v.up).length;
      const health = el('span', { class: 'state ' + (up === x.servers.length ? 'ok' : up ? 'failing' : 'down') }, `${up}/${x.servers.length} up`);
      return el('tr', {}, el('td', {}, x.name), el('td', {}, health), el('td', {}, x.servers.map(v =>
        el('div', { title: v.lastError || '' }, el('span', { class: 'dot ' + (v.up ? 'up' : 'down') }), v.address + ' (' + v.connections + ' open)',
          v.lastError ? el('span', { class: 'err' }, ' ' + v.lastError) : null))));
    }), 3, 'no TCP services');
    fill('targets', t.targets.map(x => el('tr', {},
      el('td', {}, x.name), el('td', {}, x.type), el('td', {}, x.certificates.join(', ')),
      el('td', {}, x.lastResult ? [el('span', { class: 'state ' + x.lastResult }, x.lastResult), ' ', fmtTime(x.lastDeploy)] : el('span', { class: 'muted' }, 'never'),
        x.lastError ? el('div', { class: 'err' }, x.lastError) : null),
      el('td', {}, x.servedSerial || ''), el('td', {}, x.nextRun && !x.nextRun.startsWith('0001') ? fmtTime(x.nextRun) : ''))), 6, 'no targets');
    renderFleet(f);
    lastOK = Date.now();
    banner(c.certificates, f);
    document.getElementById('updated').textContent = 'updated ' + new Date(lastOK).toLocaleTimeString();
  } catch (e) {
    if (e.unauthorized) { sessionStorage.removeItem(KEY); login.hidden = false; stale('the token was refused'); return; }
    stale(e.message);
  }
}

document.getElementById('login').addEventListener('submit', ev => {
  ev.preventDefault();
  const v = document.getElementById('token').value.trim();
  if (v) { sessionStorage.setItem(KEY, v); document.getElementById('token').value = ''; refresh(); }
});
setInterval(() => { if (lastOK && Date.now() - lastOK > STALE_MS) stale('no answer for ' + Math.round((Date.now() - lastOK) / 1000) + ' s'); }, REFRESH_MS);
setInterval(refresh, REFRESH_MS);
refresh();
