// bpfdepot's live page: plain JS over the /v1 API, served from the binary (no CDN, no build).
// Live values arrive through the watch stream (text/event-stream read from a fetch body, since
// EventSource cannot send Authorization); a server that answers the watch with plain JSON is
// polled with If-None-Match instead. One variable stream (and one entry stream) per shown load.
'use strict';

const INTERVAL_MS = 1000;       // watch interval, and the poll interval when there is no stream
const PROGRAMS_MS = 2000;       // run statistics refresh
const LISTS_MS = 10000;         // objects and loads refresh
const HISTORY = 300;            // chart points kept per numeric value
const TOKEN_KEY = 'bpfdepot.token';
const CHART_KEY = 'bpfdepot.chart';   // the charted value, kept across reloads of the tab

// The load on show: { id, abort, variables: name → {cell, text}, history: leaf → [[t, v]], entries }.
let shown = null;

const $ = (id) => document.getElementById(id);
const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

// ---- status line and token ------------------------------------------------------------------

function status(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

function showTokenState() {
  $('token-state').textContent = token() ? 'bearer token set for this tab' : 'no bearer token set';
  $('token-show').textContent = token() ? 'Change token' : 'Set token';
  $('token-forget').hidden = !token();
}

function askForToken(reason) {
  $('token-reason').textContent = reason;
  $('token-form').hidden = false;
  $('token-input').focus();
}

// Every API call goes through here: the token on each request, the form on each 401.
async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token()) headers.set('Authorization', 'Bearer ' + token());
  const res = await fetch(path, { ...options, headers, cache: 'no-store' });
  if (res.status === 401) {
    const problem = await problemOf(res);
    askForToken(`the server asked for a bearer token (401): ${problem}`);
  }
  return res;
}

async function problemOf(res) {
  try {
    const p = await res.clone().json();
    return p.detail || p.title || `HTTP ${res.status}`;
  } catch { return `HTTP ${res.status}`; }
}

async function getJSON(path) {
  const res = await api(path);
  if (!res.ok) throw new Error(`${path}: ${await problemOf(res)}`);
  return res.json();
}

// ---- the event stream -----------------------------------------------------------------------

// Calls onEvent({id, event, data}) for each event of a text/event-stream body; resolves at its end.
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '', ev = { id: null, event: 'message', data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let nl;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      if (buffer[nl] === '\r' && nl === buffer.length - 1) break;   // a CR whose LF may follow
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (ev.data.length) onEvent({ id: ev.id, event: ev.event, data: ev.data.join('\n') });
        ev = { id: ev.id, event: 'message', data: [] };
      } else if (!line.startsWith(':')) {          // ':' lines are comments (heartbeats)
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') ev.data.push(val);
        else if (field === 'event') ev.event = val;
        else if (field === 'id') ev.id = val;
      }
    }
  }
}

// Follows `path` live: onData(json) with every new body, until the signal aborts or the load
// goes away. Resolves with the reason it stopped.
async function watch(path, eventName, onData, setMode, signal) {
  const sep = path.includes('?') ? '&' : '?';
  let lastId = null;
  while (!signal.aborted) {
    let res;
    try {
      const headers = lastId ? { 'Last-Event-ID': lastId } : {};
      res = await api(`${path}${sep}watch=1&interval=${INTERVAL_MS}ms`, { headers, signal });
    } catch (e) {
      if (signal.aborted) return 'stopped';
      status(`${path}: ${e.message}; retrying`, true);
      await sleep(INTERVAL_MS * 3, signal);
      continue;
    }
    if (!res.ok) return failed(path, res);
    if ((res.headers.get('Content-Type') || '').startsWith('text/event-stream')) {
      setMode('streaming');
      let unloaded = false;
      try {
        await readEvents(res.body, (ev) => {
          if (ev.id) lastId = ev.id;
          if (ev.event === eventName) onData(JSON.parse(ev.data));
          else if (ev.event === 'unloaded') unloaded = true;
        });
      } catch (e) {
        if (signal.aborted) return 'stopped';
      }
      if (unloaded) return 'unloaded';
      await sleep(INTERVAL_MS, signal);          // reconnect, resuming from lastId
      continue;
    }
    // No stream on this server: the body is one snapshot; poll it with its tag.
    setMode(`polling every ${INTERVAL_MS} ms`);
    let etag = res.headers.get('ETag');
    onData(await res.json());
    while (!signal.aborted) {
      await sleep(INTERVAL_MS, signal);
      if (signal.aborted) break;
      try {
        res = await api(path, { headers: etag ? { 'If-None-Match': etag } : {}, signal });
      } catch (e) {
        if (signal.aborted) break;
        status(`${path}: ${e.message}; retrying`, true);
        continue;
      }
      if (res.status === 304) continue;
      if (!res.ok) return failed(path, res);
      etag = res.headers.get('ETag');
      onData(await res.json());
    }
  }
  return 'stopped';
}

async function failed(path, res) {
  status(`${path}: ${await problemOf(res)}`, true);
  return res.status === 409 ? 'unloaded' : 'failed';
}

// ---- lists ----------------------------------------------------------------------------------

const objectNames = new Map();

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function fillRows(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement('tr');
    tr.append(...cells);
    return tr;
  }));
  return tbody.children;
}

async function refreshLists() {
  try {
    const [objects, loads] = await Promise.all([getJSON('/v1/objects?limit=1000'), getJSON('/v1/loads?limit=1000')]);
    for (const o of objects.objects) objectNames.set(o.id, o.name);
    fillRows($('objects').tBodies[0], objects.objects.map((o) => [
      cell(o.name), cell(o.id.slice(0, 12)), cell(String(o.currentRevision), 'num'), cell(String(o.size), 'num')]));
    const rows = fillRows($('loads').tBodies[0], loads.loads.map((l) => {
      const link = document.createElement('a');
      link.href = `#load=${l.id}`;
      link.textContent = `load ${l.id}`;
      const first = document.createElement('td');
      first.append(link);
      return [first, cell(objectNames.get(l.objectId) || l.objectId.slice(0, 12)), cell(String(l.revision), 'num'), cell(l.state)];
    }));
    loads.loads.forEach((l, i) => rows[i].classList.toggle('current', l.id === shown?.id));
  } catch (e) {
    status(e.message, true);
  }
}

// ---- one shown load -------------------------------------------------------------------------

function selectedLoad() {
  const m = /^#load=(\d+)$/.exec(location.hash);
  return m ? Number(m[1]) : null;
}

async function showLoad() {
  showTokenState();
  shown?.abort.abort();
  shown = null;
  const id = selectedLoad();
  $('load').hidden = id === null;
  if (id === null) return;
  const load = shown = { id, abort: new AbortController(), variables: new Map(), history: new Map() };
  const signal = load.abort.signal;
  $('load-title').textContent = `Load ${id}`;
  for (const t of ['programs', 'variables', 'maps', 'entries']) $(t).tBodies[0].replaceChildren();
  $('write-name').replaceChildren();
  $('chart-leaf').replaceChildren();
  $('entries').hidden = $('entries-title').hidden = $('maps').hidden = true;
  $('maps-note').textContent = $('variables-mode').textContent = $('load-summary').textContent = '';
  refreshLists();
  try {
    const info = await getJSON(`/v1/loads/${id}`);
    if (shown !== load) return;
    $('load-summary').textContent = `object ${objectNames.get(info.objectId) || info.objectId} · revision ${info.revision} · ${info.state}` +
      (info.links?.length ? ` · ${info.links.length} link(s)` : '');
    if (info.state !== 'loaded') { status(`load ${id} is ${info.state}: nothing live to show`); return; }
  } catch (e) { status(e.message, true); return; }
  status(`showing load ${id}`);
  programsLoop(load);
  showMaps(load);
  const why = await watch(`/v1/loads/${id}/variables`, 'variables', (body) => renderVariables(load, body),
    (mode) => { $('variables-mode').textContent = `(${mode})`; }, signal);
  if (why === 'unloaded' && shown === load) {
    status(`load ${id} was unloaded`);
    $('variables-mode').textContent = '(unloaded)';
    $('load-summary').textContent = $('load-summary').textContent.replace('· loaded', '· unloaded');
    load.abort.abort();
    refreshLists();
  }
}

async function programsLoop(load) {
  while (!load.abort.signal.aborted) {
    try {
      const { programs } = await getJSON(`/v1/loads/${load.id}/programs`);
      if (load.abort.signal.aborted) return;
      fillRows($('programs').tBodies[0], programs.map((p) => [
        cell(p.name), cell(p.type), cell(String(p.runCount), 'num'), cell(`${(p.runTimeNs / 1e6).toFixed(3)} ms`, 'num'),
        cell(p.runCount ? String(Math.round(p.runTimeNs / p.runCount)) : '–', 'num'), cell(String(p.verifiedInstructions), 'num')]));
    } catch (e) {
      status(e.message, true);
    }
    await sleep(PROGRAMS_MS, load.abort.signal);
  }
}

function renderVariables(load, body) {
  if (shown !== load) return;
  const now = Date.now();
  for (const v of body.variables) {
    let entry = load.variables.get(v.name);
    if (!entry) {
      const tr = document.createElement('tr');
      tr.dataset.variable = v.name;
      const value = cell('', 'value');
      tr.append(cell(v.name), cell(v.type), value);
      $('variables').tBodies[0].append(tr);
      $('write-name').append(new Option(v.name, v.name));
      entry = { cell: value, text: null };
      load.variables.set(v.name, entry);
    }
    const text = JSON.stringify(v.value);
    if (text !== entry.text) {
      entry.cell.textContent = text;
      if (entry.text !== null) { entry.cell.classList.remove('changed'); void entry.cell.offsetWidth; entry.cell.classList.add('changed'); }
      entry.text = text;
    }
    for (const [leaf, n] of numericLeaves(v.name, v.value)) record(load, leaf, now, n);
  }
  drawChart(load);
}

// "stats.hits" → 42 for every number inside a value (struct members by name, array elements by [i]).
function* numericLeaves(name, value) {
  if (typeof value === 'number') yield [name, value];
  else if (Array.isArray(value)) for (let i = 0; i < value.length && i < 64; i++) yield* numericLeaves(`${name}[${i}]`, value[i]);
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) yield* numericLeaves(`${name}.${k}`, v);
}

function record(load, leaf, t, n) {
  let points = load.history.get(leaf);
  if (!points) {
    if (load.history.size >= 200) return;
    load.history.set(leaf, points = []);
    const chosen = leaf === sessionStorage.getItem(CHART_KEY);
    $('chart-leaf').append(new Option(leaf, leaf, chosen, chosen));
  }
  if (points.length && points[points.length - 1][1] === n) return;
  points.push([t, n]);
  if (points.length > HISTORY) points.shift();
}

// A step line of the chosen value over the last minute, drawn on the canvas by hand.
function drawChart(load) {
  const canvas = $('chart'), leaf = $('chart-leaf').value, points = load.history.get(leaf) || [];
  const ratio = window.devicePixelRatio || 1, w = canvas.clientWidth || 640, h = canvas.clientHeight || 180;
  canvas.width = w * ratio; canvas.height = h * ratio;
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  g.clearRect(0, 0, w, h);
  if (!points.length) return;
  const now = Date.now(), span = 60000, left = 70, top = 10, bottom = h - 20;
  const visible = points.filter(([t], i) => t >= now - span || (points[i + 1]?.[0] ?? now) >= now - span);
  const values = visible.map(([, v]) => v);
  let lo = Math.min(...values), hi = Math.max(...values);
  if (lo === hi) { lo -= 1; hi += 1; }
  const x = (t) => left + (w - left - 10) * Math.max(0, t - (now - span)) / span;
  const y = (v) => bottom - (bottom - top) * (v - lo) / (hi - lo);
  g.fillStyle = '#5b6572'; g.font = '11px sans-serif';
  g.fillText(String(hi), 4, top + 8); g.fillText(String(lo), 4, bottom); g.fillText('last 60 s', left, h - 5);
  g.strokeStyle = '#d5dae0'; g.strokeRect(left, top, w - left - 10, bottom - top);
  g.strokeStyle = '#0b5cad'; g.lineWidth = 2; g.beginPath();
  visible.forEach(([t, v], i) => {
    if (i === 0) g.moveTo(x(t), y(v)); else { g.lineTo(x(t), y(visible[i - 1][1])); g.lineTo(x(t), y(v)); }
  });
  g.lineTo(x(now), y(values[values.length - 1]));
  g.stroke();
  canvas.setAttribute('aria-label', `${leaf} over the last 60 s: now ${values[values.length - 1]}, between ${Math.min(...values)} and ${Math.max(...values)}`);
}

// ---- maps (GET /v1/loads/{id}/maps; a server without it answers 404) ------------------------

async function showMaps(load) {
  const res = await api(`/v1/loads/${load.id}/maps`).catch(() => null);
  if (shown !== load) return;
  if (!res || res.status === 404) { $('maps-note').textContent = 'no map API on this server'; return; }
  if (!res.ok) { $('maps-note').textContent = await problemOf(res); return; }
  const { maps } = await res.json();
  $('maps-note').textContent = maps.length ? '' : 'this load has no maps';
  $('maps').hidden = !maps.length;
  const rows = fillRows($('maps').tBodies[0], maps.map((m) => {
    const name = document.createElement('td');
    if (m.lookup) {
      const b = document.createElement('button');
      b.type = 'button'; b.className = 'link'; b.textContent = m.name;
      b.addEventListener('click', () => watchEntries(load, m.name));
      name.append(b);
    } else name.textContent = m.name;
    return [name, cell(m.type), cell(`${m.keySize} / ${m.valueSize}`, 'num'), cell(String(m.maxEntries), 'num'),
      cell(m.entries == null ? '–' : String(m.entries), 'num')];
  }));
  maps.forEach((m, i) => { rows[i].dataset.map = m.name; });
  const first = maps.find((m) => m.lookup);
  if (first) watchEntries(load, first.name);
}

async function watchEntries(load, name) {
  load.entries?.abort();
  const abort = load.entries = new AbortController();
  load.abort.signal.addEventListener('abort', () => abort.abort(), { once: true });
  $('entries-title').textContent = `Entries of ${name}`;
  $('entries').hidden = $('entries-title').hidden = false;
  const tbody = $('entries').tBodies[0];
  tbody.replaceChildren();
  await watch(`/v1/loads/${load.id}/maps/${encodeURIComponent(name)}/entries?limit=100`, 'entries', (body) => {
    if (abort.signal.aborted) return;
    fillRows(tbody, body.entries.map((e) => [cell(JSON.stringify(e.key), 'value'),
      cell(JSON.stringify('values' in e ? { sum: e.sum, perCPU: e.values } : e.value), 'value')]));
  }, (mode) => { $('entries-title').textContent = `Entries of ${name} (${mode})`; }, abort.signal);
}

// ---- forms and start ------------------------------------------------------------------------

async function writeVariable(event) {
  event.preventDefault();
  if (!shown) return;
  const name = $('write-name').value, text = $('write-value').value;
  let value;
  try { value = JSON.parse(text); } catch { value = text; }   // bare words are strings
  const res = await api(`/v1/loads/${shown.id}/variables`, {
    method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ [name]: value }) });
  if (res.ok) status(`wrote ${name} = ${JSON.stringify(value)}`);
  else status(`writing ${name}: ${await problemOf(res)}`, true);
}

function start() {
  $('token-show').addEventListener('click', () => askForToken(''));
  $('token-forget').addEventListener('click', () => { sessionStorage.removeItem(TOKEN_KEY); showTokenState(); });
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token-input').value.trim());
    $('token-input').value = '';
    $('token-form').hidden = true;
    showTokenState();
    status('token saved for this tab');
    // Reads need the token too on a server with credentials: show again what the 401s hid.
    refreshLists();
    if (!shown || $('variables').tBodies[0].rows.length === 0) showLoad();
  });
  $('write-form').addEventListener('submit', writeVariable);
  $('refresh').addEventListener('click', refreshLists);
  $('chart-leaf').addEventListener('change', () => {
    sessionStorage.setItem(CHART_KEY, $('chart-leaf').value);
    if (shown) drawChart(shown);
  });
  window.addEventListener('hashchange', showLoad);
  setInterval(() => shown && drawChart(shown), 1000);
  setInterval(refreshLists, LISTS_MS);
  showTokenState();
  refreshLists();
  showLoad();
}

start();
