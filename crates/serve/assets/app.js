// s2s serve: the runs page, a run's page, the explorer and side by side, over the JSON API.
'use strict';

const app = document.getElementById('app');
const readout = document.getElementById('readout');
const SVG = 'http://www.w3.org/2000/svg';
let timer = null; // the current page's poller
let routeId = 0; // bumped at each page change, so late answers of a left page are dropped
let stretchFirst = false; // `&stretch=1` in the link: maps start with stretched colours

// An HTML element: el('a', {href: '#/', class: 'x', onclick: f}, 'text', child, ...).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function svgEl(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

async function api(path, body) {
  const init = body === undefined ? {} : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
  const r = await fetch(path, init);
  let json = null;
  try { json = await r.json(); } catch (_) { /* not JSON: reported below */ }
  if (!r.ok) throw new Error(json && json.error ? json.error : `${r.status} ${r.statusText}`);
  return json;
}

const fmt = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? '–' : Number(v).toFixed(d));
const runPath = (name) => name.split('/').map(encodeURIComponent).join('/');
const showError = (where, e) => where.replaceChildren(el('p', { class: 'error' }, String(e.message || e)));

// ---- colours: viridis, by five stops ----
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function colour(w) {
  const t = Math.min(1, Math.max(0, w)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(t));
  const f = t - i;
  const c = STOPS[i].map((a, k) => Math.round(a + (STOPS[i + 1][k] - a) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

// ---- heatmap: source on x, output on y, weight on hover ----
function heatmap(grid, opts = {}) {
  const cell = opts.cell || 26;
  const labels = opts.labels !== false;
  const top1 = opts.max || 1; // the weight drawn brightest
  const left = labels ? 8 + 7 * Math.max(1, ...grid.output.map((s) => s.length)) : 0;
  const top = labels ? 8 + 7 * Math.max(1, ...grid.source.map((s) => s.length)) : 0;
  const w = left + cell * grid.source.length + 2;
  const h = top + cell * grid.output.length + 2;
  const svg = svgEl('svg', { class: 'heatmap', width: w, height: h, viewBox: `0 0 ${w} ${h}` });
  if (labels) {
    grid.source.forEach((s, c) => {
      const x = left + c * cell + cell / 2 + 4;
      const t = svgEl('text', { x, y: top - 6, transform: `rotate(-60 ${x} ${top - 6})` });
      t.textContent = s;
      svg.append(t);
    });
    grid.output.forEach((s, r) => {
      const t = svgEl('text', { x: left - 6, y: top + r * cell + cell / 2 + 4, 'text-anchor': 'end' });
      t.textContent = s;
      svg.append(t);
    });
  }
  grid.weights.forEach((row, r) => row.forEach((wgt, c) => {
    const rect = svgEl('rect', {
      class: 'cell', x: left + c * cell, y: top + r * cell, width: cell - 1, height: cell - 1, fill: colour(wgt / top1),
      'data-weight': wgt.toFixed(4), 'data-source': grid.source[c], 'data-output': grid.output[r],
    });
    const title = svgEl('title');
    title.textContent = `${grid.output[r]} ← ${grid.source[c]}: ${wgt.toFixed(3)}`;
    rect.append(title);
    svg.append(rect);
  }));
  svg.addEventListener('mousemove', (ev) => {
    const t = ev.target;
    if (!t.classList || !t.classList.contains('cell')) { readout.hidden = true; return; }
    readout.textContent = `output “${t.dataset.output}” ← source “${t.dataset.source}”: ${t.dataset.weight}`;
    readout.style.left = `${ev.clientX + 14}px`;
    readout.style.top = `${ev.clientY + 14}px`;
    readout.hidden = false;
  });
  svg.addEventListener('mouseleave', () => { readout.hidden = true; });
  return svg;
}

// ---- line chart for the run page ----
const PALETTE = ['#2f5fb3', '#e4572e', '#17a398', '#8e44ad'];
function lineChart(title, series) {
  const W = 460, H = 240, L = 52, R = 12, T = 26, B = 30;
  const svg = svgEl('svg', { class: 'chart', width: W, height: H, 'data-title': title });
  const head = svgEl('text', { x: L, y: 16, 'font-weight': 600 });
  head.textContent = title;
  svg.append(head);
  const pts = series.flatMap((s) => s.points);
  if (pts.length === 0) {
    const t = svgEl('text', { x: L, y: H / 2 });
    t.textContent = 'no points yet';
    svg.append(t);
    return svg;
  }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  const px = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  svg.append(svgEl('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#aaa' }));
  svg.append(svgEl('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: '#aaa' }));
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    const t = svgEl('text', { x: L - 4, y: py(y) + 4, 'text-anchor': 'end' });
    // Small values in exponent form (5.56e-5), so that a tick label fits beside the axis.
    const a = Math.abs(y);
    t.textContent = a >= 100 ? y.toFixed(0) : a !== 0 && a < 0.01 ? y.toExponential(2) : y.toPrecision(3);
    svg.append(t);
  }
  const xl = svgEl('text', { x: W - R, y: H - 8, 'text-anchor': 'end' });
  xl.textContent = `epoch ${x1}`;
  svg.append(xl);
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const colourOf = PALETTE[i % PALETTE.length];
    const d = s.points.map((p) => `${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ');
    svg.append(svgEl('polyline', { class: 'series', 'data-name': s.name, 'data-points': s.points.length, points: d, fill: 'none', stroke: colourOf, 'stroke-width': 2 }));
    const lg = svgEl('text', { x: L + 130 + i * 110, y: 16, fill: colourOf });
    lg.textContent = `— ${s.name}`;
    svg.append(lg);
  });
  return svg;
}

// ---- the runs page ----
function statusBadge(status) {
  return el('span', { class: `status status-${status}` }, status);
}

async function runsPage(id) {
  app.replaceChildren(el('h1', {}, 'Runs'), el('div', { id: 'runs' }, el('p', { class: 'muted' }, 'Loading…')));
  const box = document.getElementById('runs');
  const draw = async () => {
    let runs;
    try { runs = await api('/api/runs'); } catch (e) { if (id === routeId) showError(box, e); return; }
    if (id !== routeId) return;
    if (runs.length === 0) { box.replaceChildren(el('p', { class: 'muted' }, 'No runs in the served folders.')); return; }
    const head = el('tr', {}, ['run', 'status', 'model', 'epochs', 'best BLEU', 'best valid loss', 'age', ''].map((h) => el('th', {}, h)));
    const rows = runs.map((r) => el('tr', { 'data-run': r.name },
      el('td', {}, el('a', { href: `#/run/${runPath(r.name)}` }, r.name)),
      el('td', {}, statusBadge(r.status)),
      el('td', {}, r.model || '–'),
      el('td', { class: 'num' }, String(r.epochs)),
      el('td', { class: 'num' }, fmt(r.best_valid_bleu)),
      el('td', { class: 'num' }, fmt(r.best_valid_loss, 4)),
      el('td', {}, r.age || '–'),
      el('td', {}, r.checkpoints.length ? el('a', { href: `#/explore/${runPath(r.name)}` }, 'explore') : ''),
    ));
    box.replaceChildren(el('table', { id: 'runs-table' }, head, rows));
  };
  await draw();
  timer = setInterval(draw, 3000);
}

// ---- a run's page ----
async function runPage(id, name) {
  app.replaceChildren(el('h1', {}, `Run ${name}`), el('div', { id: 'run' }, el('p', { class: 'muted' }, 'Loading…')));
  const box = document.getElementById('run');
  const draw = async () => {
    let r;
    try { r = await api(`/api/runs/${runPath(name)}`); } catch (e) { if (id === routeId) showError(box, e); return; }
    if (id !== routeId) return;
    const m = (k) => r.metrics[k] || [];
    const facts = el('p', {}, statusBadge(r.status), ' ', r.model || '', ` · ${r.epochs} epochs · started ${r.age || '–'} ago `,
      r.checkpoints.length ? el('a', { href: `#/explore/${runPath(name)}` }, 'explore this run') : '');
    const charts = el('div', { class: 'charts' },
      lineChart('loss', [{ name: 'train', points: m('train_loss') }, { name: 'valid', points: m('valid_loss') }]),
      lineChart('scores', [{ name: 'BLEU', points: m('valid_bleu') }, { name: 'chrF', points: m('valid_chrf') }]));
    const cols = Object.keys(r.metrics).filter((c) => c !== 'epoch');
    const epochs = [...new Set(cols.flatMap((c) => r.metrics[c].map((p) => p[0])))].sort((a, b) => a - b);
    const value = (c, e) => { const p = r.metrics[c].find((q) => q[0] === e); return p ? p[1] : null; };
    const table = el('table', { id: 'metrics' }, el('tr', {}, el('th', {}, 'epoch'), cols.map((c) => el('th', {}, c))),
      epochs.map((e) => el('tr', {}, el('td', { class: 'num' }, String(e)), cols.map((c) => { const v = value(c, e); return el('td', { class: 'num' }, Number.isInteger(v) ? String(v) : fmt(v, 4)); }))));
    const trans = r.translations.length
      ? el('table', {}, el('tr', {}, ['source', 'reference', 'translation'].map((h) => el('th', {}, h))),
        r.translations.map((t) => el('tr', {}, el('td', {}, t.source || ''), el('td', {}, t.reference || ''), el('td', {}, t.translation || ''))))
      : el('p', { class: 'muted' }, 'No report translations yet.');
    box.replaceChildren(facts, el('h2', {}, 'Curves'), charts, el('h2', {}, 'Metrics'), el('div', { class: 'scroll' }, table),
      el('h2', {}, 'Report translations'), trans, el('h2', {}, 'Config'), el('pre', {}, r.config || '(no config.toml)'));
  };
  await draw();
  timer = setInterval(draw, 2000);
}

// ---- one translation's maps: view, layer and head pickers, the layer × head grid ----
function mapsView(hyp) {
  const state = { words: false, layer: 'model', head: 'mean', stretch: stretchFirst };
  const layers = hyp.layers || [];
  const root = el('div', { class: 'maps' });
  const differs = JSON.stringify(hyp.attention.tokens.source) !== JSON.stringify(hyp.attention.words.source)
    || JSON.stringify(hyp.attention.tokens.output) !== JSON.stringify(hyp.attention.words.output);
  const pick = () => {
    if (state.layer === 'model') return hyp.attention;
    const l = layers[state.layer];
    return state.head === 'mean' ? l.mean : l.heads[state.head];
  };
  const viewSel = el('select', { class: 'view', onchange: (e) => { state.words = e.target.value === 'words'; draw(); } },
    el('option', { value: 'tokens' }, 'subwords'), el('option', { value: 'words' }, 'words'));
  const layerSel = el('select', { class: 'layer', onchange: (e) => { state.layer = e.target.value === 'model' ? 'model' : Number(e.target.value); draw(); } },
    el('option', { value: 'model' }, 'last layer (what decoding used)'), layers.map((_, i) => el('option', { value: i }, `layer ${i}`)));
  const headSel = el('select', { class: 'head', onchange: (e) => { state.head = e.target.value === 'mean' ? 'mean' : Number(e.target.value); draw(); } },
    el('option', { value: 'mean' }, 'mean over heads'), (layers[0] ? layers[0].heads : []).map((_, i) => el('option', { value: i }, `head ${i}`)));
  const stretch = el('input', { type: 'checkbox', class: 'stretch', checked: state.stretch, onchange: (e) => { state.stretch = e.target.checked; draw(); } });
  const controls = el('div', { class: 'controls' },
    el('label', {}, 'colours up to the map\'s largest weight', stretch),
    differs ? el('label', {}, 'view', viewSel) : null,
    layers.length ? el('label', {}, 'layer', layerSel) : null,
    layers.length ? el('label', {}, 'head', headSel) : null);
  const main = el('div', { class: 'main-map' });
  const grid = el('div', { class: 'grid-maps' });
  const draw = () => {
    headSel.disabled = state.layer === 'model';
    const maps = pick();
    const g = state.words ? maps.words : maps.tokens;
    const unit = state.words ? 'words' : (differs ? 'subword tokens' : 'tokens');
    const top = (m) => (state.stretch ? Math.max(1e-6, ...m.weights.flat()) : 1);
    const scale = state.stretch ? ` · colours 0–${top(g).toFixed(3)}` : '';
    main.replaceChildren(el('div', { class: 'map-caption' }, `${maps.label} · ${unit}${scale}`), heatmap(g, { max: top(g) }));
    if (!layers.length) return;
    const heads = layers[0].heads.length;
    grid.style.gridTemplateColumns = `repeat(${heads + 1}, max-content)`;
    grid.replaceChildren(...layers.flatMap((l, li) => [...l.heads.map((m, hi) => [m, hi]), [l.mean, 'mean']].map(([m, hi]) => {
      const chosen = state.layer === li && state.head === hi;
      const g2 = state.words ? m.words : m.tokens;
      const cell = Math.max(4, Math.min(10, Math.floor(120 / Math.max(g2.source.length, g2.output.length))));
      return el('figure', { class: chosen ? 'chosen' : '', 'data-layer': li, 'data-head': hi,
        onclick: () => { state.layer = li; state.head = hi; layerSel.value = String(li); headSel.value = String(hi); draw(); } },
      heatmap(g2, { cell, labels: false, max: top(g2) }), el('figcaption', {}, hi === 'mean' ? `L${li} mean` : `L${li} H${hi}`));
    })));
  };
  draw();
  root.append(controls, main);
  if (layers.length) root.append(el('h2', {}, 'Layer × head'), el('p', { class: 'muted' }, 'Rows are decoder layers, columns heads (the last column is their mean). Click one to enlarge it.'), grid);
  return root;
}

// One sentence's result: source, hypotheses (pick one), its maps.
function sentenceCard(s) {
  const body = el('div');
  const list = el('ul', { class: 'hyps' });
  const choose = (i) => {
    [...list.children].forEach((li, k) => li.classList.toggle('chosen', k === i));
    body.replaceChildren(mapsView(s.hypotheses[i]));
  };
  s.hypotheses.forEach((h, i) => list.append(el('li', { onclick: () => choose(i) },
    el('span', { class: 'translation-text' }, h.text || '(empty)'),
    el('span', { class: 'score' }, `score ${fmt(h.score, 3)} · log p ${fmt(h.log_prob, 3)}`))));
  const card = el('div', { class: 'card sentence' }, el('div', { class: 'source' }, s.source),
    s.unknown.length ? el('div', { class: 'muted' }, `unknown to the model: ${s.unknown.join(' ')}`) : null, list, body);
  choose(0);
  return card;
}

// Run and checkpoint pickers; `onchange(run, checkpoint)` after either changes.
function runPicker(prefix, runs, initial, onchange) {
  const runSel = el('select', { id: `${prefix}-run` }, runs.filter((r) => r.checkpoints.length).map((r) => el('option', { value: r.name }, `${r.name} (${r.family || '?'})`)));
  const ckSel = el('select', { id: `${prefix}-checkpoint` });
  const fill = () => {
    const r = runs.find((q) => q.name === runSel.value);
    const names = r ? ['best', 'last', ...r.checkpoints.filter((c) => c !== 'best')] : [];
    ckSel.replaceChildren(...names.map((c) => el('option', { value: c }, c)));
  };
  if (initial.run) runSel.value = initial.run;
  fill();
  if (initial.checkpoint) ckSel.value = initial.checkpoint;
  runSel.addEventListener('change', () => { fill(); onchange(); });
  ckSel.addEventListener('change', onchange);
  return { runSel, ckSel, node: [el('label', {}, 'run', runSel), el('label', {}, 'checkpoint', ckSel)] };
}

function decodingPicker(prefix) {
  const beam = el('input', { id: `${prefix}-beam`, type: 'number', min: 1, max: 16, value: 1, style: 'width:5em' });
  const nbest = el('input', { id: `${prefix}-nbest`, type: 'number', min: 1, max: 16, value: 1, style: 'width:5em' });
  return {
    node: [el('label', {}, 'beam (1 = greedy)', beam), el('label', {}, 'n-best', nbest)],
    get: () => ({ beam: Number(beam.value) || 1, n_best: Math.min(Number(nbest.value) || 1, Number(beam.value) || 1) }),
  };
}

const sentencesOf = (text) => text.split('\n').map((s) => s.trim()).filter((s) => s.length > 0);

// ---- the explorer ----
async function explorePage(id, name, query) {
  app.replaceChildren(el('h1', {}, 'Explorer'), el('p', { class: 'muted' }, 'Loading runs…'));
  let runs;
  try { runs = await api('/api/runs'); } catch (e) { showError(app, e); return; }
  if (id !== routeId) return;
  const usable = runs.filter((r) => r.checkpoints.length);
  if (!usable.length) { app.replaceChildren(el('h1', {}, 'Explorer'), el('p', { class: 'muted' }, 'No run with a checkpoint yet.')); return; }
  const picker = runPicker('explore', usable, { run: name || usable[0].name }, () => {});
  const decoding = decodingPicker('explore');
  const text = el('textarea', { id: 'sentences', placeholder: 'One sentence per line' });
  const button = el('button', { id: 'translate' }, 'Translate');
  const results = el('div', { id: 'results' });
  const go = async () => {
    const sentences = sentencesOf(text.value);
    if (!sentences.length) { showError(results, new Error('type a sentence first')); return; }
    button.disabled = true;
    results.replaceChildren(el('p', { class: 'muted' }, 'Translating…'));
    try {
      const r = await api('/api/translate', { run: picker.runSel.value, checkpoint: picker.ckSel.value, sentences, heads: true, ...decoding.get() });
      results.replaceChildren(el('p', { class: 'muted', id: 'answered' }, `${r.run} · checkpoint ${r.checkpoint} (step ${r.step}) · ${r.family} · ${r.beam > 1 ? `beam ${r.beam}` : 'greedy'} · ${fmt(r.decode_ms, 1)} ms`),
        ...r.translations.map(sentenceCard));
    } catch (e) { showError(results, e); }
    button.disabled = false;
  };
  button.addEventListener('click', go);
  text.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) go(); });
  app.replaceChildren(el('h1', {}, 'Explorer'), el('div', { class: 'card' }, el('div', { class: 'controls' }, picker.node, decoding.node), text,
    el('div', { class: 'controls' }, button, el('span', { class: 'muted' }, 'Ctrl+Enter translates'))), results);
  // A link may carry the sentences (`?s=`, one per line) to translate at once.
  if (query.get('s')) { text.value = query.get('s'); go(); }
}

// ---- side by side ----
async function comparePage(id, query) {
  app.replaceChildren(el('h1', {}, 'Side by side'), el('p', { class: 'muted' }, 'Loading runs…'));
  let runs;
  try { runs = await api('/api/runs'); } catch (e) { showError(app, e); return; }
  if (id !== routeId) return;
  const usable = runs.filter((r) => r.checkpoints.length);
  if (!usable.length) { app.replaceChildren(el('h1', {}, 'Side by side'), el('p', { class: 'muted' }, 'No run with a checkpoint yet.')); return; }
  const side = (k, fallback) => { const [run, checkpoint] = (query.get(k) || '').split('@'); return { run: run || fallback, checkpoint }; };
  const a = runPicker('compare-a', usable, side('a', usable[0].name), () => {});
  const b = runPicker('compare-b', usable, side('b', (usable[1] || usable[0]).name), () => {});
  const decoding = decodingPicker('compare');
  const text = el('textarea', { id: 'compare-sentence', placeholder: 'One sentence' });
  const button = el('button', { id: 'compare-translate' }, 'Translate with both');
  const panes = el('div', { class: 'side', id: 'panes' });
  button.addEventListener('click', async () => {
    const sentences = sentencesOf(text.value).slice(0, 1);
    if (!sentences.length) { showError(panes, new Error('type a sentence first')); return; }
    button.disabled = true;
    const one = async (p, label) => {
      const pane = el('div', { class: 'pane card' });
      try {
        const r = await api('/api/translate', { run: p.runSel.value, checkpoint: p.ckSel.value, sentences, heads: true, ...decoding.get() });
        pane.append(el('div', { class: 'map-caption' }, `${label}: ${r.run} · ${r.checkpoint} (step ${r.step}) · ${r.family}`), sentenceCard(r.translations[0]));
      } catch (e) { pane.append(el('p', { class: 'error' }, `${label}: ${e.message}`)); }
      return pane;
    };
    const both = await Promise.all([one(a, 'A'), one(b, 'B')]);
    panes.replaceChildren(...both);
    button.disabled = false;
  });
  app.replaceChildren(el('h1', {}, 'Side by side'), el('div', { class: 'card' },
    el('div', { class: 'controls' }, el('strong', {}, 'A'), a.node), el('div', { class: 'controls' }, el('strong', {}, 'B'), b.node),
    el('div', { class: 'controls' }, decoding.node), text, el('div', { class: 'controls' }, button)), panes);
  if (query.get('s')) { text.value = query.get('s'); button.click(); }
}

// ---- routing: #/, #/run/NAME, #/explore[/NAME][?s=TEXT], #/compare?a=RUN@CK&b=RUN@CK[&s=TEXT] ----
function route() {
  if (timer) { clearInterval(timer); timer = null; }
  readout.hidden = true;
  const id = ++routeId;
  const raw = location.hash.replace(/^#\/?/, '');
  const at = raw.indexOf('?');
  const path = decodeURIComponent(at < 0 ? raw : raw.slice(0, at));
  const query = new URLSearchParams(at < 0 ? '' : raw.slice(at + 1));
  stretchFirst = query.get('stretch') === '1';
  if (path.startsWith('run/')) return runPage(id, path.slice(4));
  if (path === 'explore' || path.startsWith('explore/')) return explorePage(id, path.slice(8), query);
  if (path === 'compare') return comparePage(id, query);
  return runsPage(id);
}

window.addEventListener('hashchange', route);
route();
