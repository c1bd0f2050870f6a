// zoku dashboard: reads the admin API with the bearer token and redraws
// every 5 seconds. Data is shown with textContent only (names and errors
// come from configs and CAs, never trusted as HTML). The banner is never
// green while a certificate is expired or expiring, or while the data is
// stale (traefik#12126 showed green with expired certificates).
'use strict';

const REFRESH_MS = 5000;
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
  if (!r.ok) throw new Error(body.detail || r.statusText);
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

function banner(certs) {
  const b = document.getElementById('banner');
  const count = s => certs.filter(c => c.state === s).length;
  const bad = count('expired') + count('expiring') + count('missing');
  const warn = count('failing');
  let cls = 'ok', text = `all ${certs.length} certificates valid`;
  if (bad) { cls = 'bad'; text = ['expired', 'expiring', 'missing', 'failing'].filter(s => count(s)).map(s => `${count(s)} ${s}`).join(', '); }
  else if (warn) { cls = 'warn'; text = `${warn} renewal${warn > 1 ? 's' : ''} failing`; }
  else if (!certs.length) { cls = 'unknown'; text = 'no managed certificates'; }
  b.className = 'banner ' + cls;
  b.textContent = text;
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
    const [c, r, s, t, tcp] = await Promise.all(['certificates', 'routes', 'services', 'targets', 'tcp'].map(p => api(p, token)));
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
      el('td', {}, x.service), el('td', {}, (x.entryPoints || []).join(', ')))), 5, 'no routes');
    fill('services', s.services.map(x => {
      const up = x.servers.filter(v => v.up).length;
      const health = x.static ? el('span', { class: 'state ok' }, 'static')
        : el('span', { class: 'state ' + (up === x.servers.length ? 'ok' : up ? 'failing' : 'down') }, `${up}/${x.servers.length} up`);
      return el('tr', {}, el('td', {}, x.name), el('td', {}, health), el('td', {}, x.servers.map(v =>
        el('div', { title: v.lastError || '' }, el('span', { class: 'dot ' + (v.up ? 'up' : 'down') }), v.url, v.lastError ? el('span', { class: 'err' }, ' ' + v.lastError) : null))));
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
    lastOK = Date.now();
    banner(c.certificates);
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
