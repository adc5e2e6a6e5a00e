/* mlpulse dashboard: fills the server-rendered pages from the /api/v1 JSON routes.
 *
 * Rules kept throughout: every string from the API or the URL reaches the DOM through
 * textContent or a DOM property (never innerHTML), and reaches plotly.js HTML-escaped
 * (plotly reads a few tags in labels); the API key lives in sessionStorage and travels in
 * the Authorization header only; the page's state (range, end, step, version, segment,
 * refresh) lives in the URL.
 */
(function () {
  'use strict';

  var body = document.body;
  var ROOT = body.dataset.root || '';
  var API = ROOT + '/api/v1';
  var KEY = 'mlpulse.readKey';
  var MAX_POINTS = 120; // points per time-series chart: the server merges buckets per step
  var MAX_HEAT = 31; // windows in the drift heatmap and the per-window drift and quality charts
  var STEPS = ['1m', '5m', '10m', '15m', '30m', '1h', '3h', '6h', '12h', '1d', '7d'];
  var DEFAULTS = { range: '6h', end: 'now', step: 'auto', version: '*', segment: '', refresh: '0', state: '' };
  var KEY_METRICS = {
    binary: ['accuracy', 'roc_auc', 'f1'],
    multiclass: ['accuracy', 'f1_macro'],
    regression: ['mae', 'rmse', 'r2']
  };
  var COLORS = ['#0b5cad', '#d1495b', '#2e933c', '#8e44ad', '#e08e0b', '#00798c', '#6c757d'];

  // ------------------------------------------------------------------ small helpers

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === 'text') node.textContent = attrs[k];
        else if (k === 'className') node.className = attrs[k];
        else node.setAttribute(k, attrs[k]);
      });
    }
    (children || []).forEach(function (c) {
      if (c != null) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return node;
  }
  function $(id) { return document.getElementById(id); }
  function enc(s) { return encodeURIComponent(String(s)); }
  /* plotly.js reads <br>, <b>, <a> ... in labels: names are data, so escape them */
  function esc(s) {
    return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;').replace(/'/g, '&#39;');
  }
  function fmt(v, digits) {
    if (v === null || v === undefined || (typeof v === 'number' && !isFinite(v))) return '—';
    if (typeof v === 'number') {
      if (Number.isInteger(v) && Math.abs(v) >= 1000) return v.toLocaleString('en-US');
      if (Number.isInteger(v)) return String(v);
      var d = digits === undefined ? 3 : digits;
      return Math.abs(v) >= 1000 ? v.toLocaleString('en-US', { maximumFractionDigits: 1 }) : v.toFixed(d);
    }
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }
  function pct(v) { return v === null || v === undefined ? '—' : (100 * v).toFixed(1) + ' %'; }
  function iso(ms) { return new Date(ms).toISOString().replace('.000Z', 'Z'); }
  function when(s) { return s ? String(s).replace('T', ' ').replace(/:00(\.0+)?(\+00:00|Z)$/, '').replace(/\+00:00$/, '') : '—'; }
  function seconds(text) {
    var m = /^(\d+(?:\.\d+)?)(s|m|h|d|w)$/.exec(String(text || '').trim());
    if (!m) return NaN;
    return parseFloat(m[1]) * { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2]];
  }
  function status(text, isError) {
    var s = $('status');
    s.textContent = text || '';
    s.className = 'status' + (isError ? ' error' : '');
  }
  function badge(text, kind) { return el('span', { className: 'badge ' + (kind || text), text: text }); }
  function link(href, text) { var a = el('a', { text: text }); a.href = href; return a; }
  function modelUrl(name) { return ROOT + '/models/' + enc(name); }
  /* the page's range and filters, to carry over to the pages it links to */
  function carried() {
    var q = new URLSearchParams(location.search);
    q.delete('column'); q.delete('state');
    var text = q.toString();
    return text ? '&' + text : '';
  }
  function featureUrl(name, col) { return modelUrl(name) + '/features?column=' + enc(col) + carried(); }
  function carryLinks() {
    var extra = carried();
    Array.prototype.forEach.call(document.querySelectorAll('a[data-carry]'), function (a) {
      var base = a.getAttribute('href').split('?')[0];
      a.setAttribute('href', base + (extra ? '?' + extra.slice(1) : ''));
    });
  }

  /* run `work` over items, `limit` at a time */
  function pool(items, limit, work) {
    var results = new Array(items.length), next = 0;
    function worker() {
      if (next >= items.length) return Promise.resolve();
      var i = next++;
      return Promise.resolve(work(items[i], i)).then(function (r) { results[i] = r; return worker(); });
    }
    var workers = [];
    for (var k = 0; k < Math.min(limit, items.length); k++) workers.push(worker());
    return Promise.all(workers).then(function () { return results; });
  }

  // ------------------------------------------------------------------ API and the key

  function ApiError(status, message) { this.status = status; this.message = message; }
  ApiError.prototype = Object.create(Error.prototype);

  var askingKey = null;
  function askKey(message) {
    if (askingKey) return askingKey;
    var dialog = $('key-dialog');
    askingKey = new Promise(function (resolve, reject) {
      $('key-error').textContent = message || '';
      $('key-input').value = '';
      function done(ok) {
        $('key-form').removeEventListener('submit', onSubmit);
        $('key-cancel').removeEventListener('click', onCancel);
        dialog.removeEventListener('cancel', onCancel);
        if (dialog.open) dialog.close();
        askingKey = null;
        if (ok) resolve(); else reject(new ApiError(401, 'an API key with the read scope is needed to show this page'));
      }
      function onSubmit(ev) {
        ev.preventDefault();
        var key = $('key-input').value.trim();
        if (!key) return;
        sessionStorage.setItem(KEY, key);
        $('key-button').hidden = false;
        done(true);
      }
      function onCancel(ev) { if (ev) ev.preventDefault(); done(false); }
      $('key-form').addEventListener('submit', onSubmit);
      $('key-cancel').addEventListener('click', onCancel);
      dialog.addEventListener('cancel', onCancel);
      dialog.showModal();
      $('key-input').focus();
    });
    return askingKey;
  }

  function api(path, options) {
    options = options || {};
    var headers = { Accept: 'application/json' };
    var key = sessionStorage.getItem(KEY);
    if (key) headers.Authorization = 'Bearer ' + key;
    var init = { method: options.body ? 'POST' : 'GET', headers: headers, cache: 'no-store', credentials: 'same-origin' };
    if (options.body) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(options.body);
    }
    return fetch(API + path, init).then(function (r) {
      if (r.status === 401 || (r.status === 403 && !options.quiet403)) {
        return r.json().catch(function () { return {}; }).then(function (b) {
          if (key) sessionStorage.removeItem(KEY);
          return askKey(key ? (b.detail || 'this key was refused') : '').then(function () { return api(path, options); });
        });
      }
      if (!r.ok) {
        return r.json().catch(function () { return {}; }).then(function (b) {
          throw new ApiError(r.status, b.detail || ('HTTP ' + r.status));
        });
      }
      return r.json();
    });
  }
  /* an API call whose failure leaves its chart empty with a note, not the whole page */
  function optional(promise) {
    return promise.then(function (v) { return v; }, function (e) {
      if (e && e.status === 401) throw e;
      return { error: e && e.message ? e.message : String(e) };
    });
  }

  // ------------------------------------------------------------------ URL state

  function readState() {
    var q = new URLSearchParams(location.search);
    var s = {};
    Object.keys(DEFAULTS).forEach(function (k) { s[k] = q.get(k) !== null ? q.get(k) : DEFAULTS[k]; });
    if (!(seconds(s.range) > 0)) s.range = DEFAULTS.range;
    if (s.step !== 'auto' && !(seconds(s.step) > 0)) s.step = 'auto';
    if (!(parseInt(s.refresh, 10) >= 0)) s.refresh = '0';
    return s;
  }
  function writeState(s, push) {
    var q = new URLSearchParams();
    Object.keys(DEFAULTS).forEach(function (k) { if (s[k] !== undefined && s[k] !== DEFAULTS[k]) q.set(k, s[k]); });
    var column = new URLSearchParams(location.search).get('column');
    if (column !== null) q.set('column', column); // the feature page's own parameter
    var text = q.toString();
    var url = location.pathname + (text ? '?' + text : '') + location.hash;
    if (push) history.pushState(null, '', url); else history.replaceState(null, '', url);
  }

  function ensureOption(select, value, label) {
    if (!select) return;
    for (var i = 0; i < select.options.length; i++) if (select.options[i].value === value) return;
    select.appendChild(el('option', { value: value, text: label || value }));
  }
  function syncControls(s) {
    var map = { range: 'range', end: 'end', step: 'step', version: 'version', segment: 'segment', refresh: 'refresh', state: 'alert-state' };
    Object.keys(map).forEach(function (k) {
      var c = $(map[k]);
      if (!c) return;
      if (c.tagName === 'SELECT') ensureOption(c, s[k], k === 'range' ? 'last ' + s[k] : s[k]);
      c.value = s[k];
    });
  }
  function controlsState() {
    var s = readState();
    var map = { range: 'range', end: 'end', step: 'step', version: 'version', segment: 'segment', refresh: 'refresh', state: 'alert-state' };
    Object.keys(map).forEach(function (k) { var c = $(map[k]); if (c) s[k] = c.value.trim(); });
    if (!s.end) s.end = 'now';
    return s;
  }

  // ------------------------------------------------------------------ time windows

  function autoStep(rangeS) {
    for (var i = 0; i < STEPS.length; i++) if (rangeS / seconds(STEPS[i]) <= MAX_POINTS) return STEPS[i];
    return STEPS[STEPS.length - 1];
  }
  function coarser(rangeS, stepS, most) {
    for (var i = 0; i < STEPS.length; i++) {
      var st = seconds(STEPS[i]);
      if (st >= stepS && rangeS / st <= most) return STEPS[i];
    }
    return STEPS[STEPS.length - 1];
  }

  /* the newest minute holding data: two small count queries (days, then minutes) */
  function latestData(model, version) {
    var base = '/models/' + enc(model) + '/versions/' + enc(version || '*') + '/metrics?metrics=count';
    var now = Date.now();
    var dayEnd = Math.ceil(now / 86400000) * 86400000;
    return api(base + '&step=1d&start=' + iso(dayEnd - 400 * 86400000) + '&end=' + iso(dayEnd)).then(function (r) {
      var last = null;
      r.rows.forEach(function (row) { if (row.n > 0) last = row; });
      if (!last) return null;
      var lo = Date.parse(last.window_start);
      return api(base + '&step=15m&start=' + iso(lo) + '&end=' + iso(lo + 86400000)).then(function (r2) {
        var found = null;
        r2.rows.forEach(function (row) { if (row.n > 0) found = row; });
        return found ? Date.parse(found.window_end) : lo + 86400000;
      });
    });
  }
  function latestOfAll(models) {
    return pool(models, 4, function (m) { return latestData(m.name).catch(function () { return null; }); })
      .then(function (ends) { return ends.reduce(function (a, b) { return b !== null && (a === null || b > a) ? b : a; }, null); });
  }

  /* [start, end) aligned to the step, with range/step windows */
  function resolveWindow(s, anchorPromise) {
    var rangeS = seconds(s.range);
    var step = s.step === 'auto' ? autoStep(rangeS) : s.step;
    var stepS = seconds(step);
    if (rangeS / stepS > 2000) { step = autoStep(rangeS); stepS = seconds(step); }
    var anchor;
    if (s.end === 'now') anchor = Promise.resolve(Date.now());
    else if (s.end === 'latest') anchor = anchorPromise ? anchorPromise() : Promise.resolve(Date.now());
    else {
      var t = Date.parse(s.end);
      if (isNaN(t)) return Promise.reject(new ApiError(400, 'Ending: ' + JSON.stringify(s.end) + ' is not now, latest or an ISO time'));
      anchor = Promise.resolve(t);
    }
    return anchor.then(function (a) {
      if (a === null || a === undefined) a = Date.now();
      var endMs = Math.ceil(a / (stepS * 1000)) * stepS * 1000;
      var points = Math.max(1, Math.round(rangeS / stepS));
      var startMs = endMs - points * stepS * 1000;
      var heat = coarser(rangeS, stepS, MAX_HEAT);
      var heatS = seconds(heat);
      var heatEnd = Math.ceil(endMs / (heatS * 1000)) * heatS * 1000;
      var heatN = Math.max(1, Math.round((endMs - startMs) / (heatS * 1000)));
      var w = {
        start: iso(startMs), end: iso(endMs), step: step, points: points, startMs: startMs, endMs: endMs,
        heatStep: heat, heatStart: iso(heatEnd - heatN * heatS * 1000), heatEnd: iso(heatEnd), heatPoints: heatN,
        prevStart: iso(startMs - (endMs - startMs)), prevEnd: iso(startMs)
      };
      var shown = $('window');
      if (shown) shown.textContent = when(w.start) + ' → ' + when(w.end) + ' UTC, ' + points + ' × ' + step;
      return w;
    });
  }
  function qs(w, s, extra) {
    var p = new URLSearchParams();
    p.set('start', w.start); p.set('end', w.end);
    if (s.segment) p.set('segment', s.segment);
    Object.keys(extra || {}).forEach(function (k) { if (extra[k] !== null && extra[k] !== undefined) p.set(k, extra[k]); });
    return p.toString();
  }

  // ------------------------------------------------------------------ charts and tables

  function baseLayout(extra) {
    var layout = {
      margin: { l: 48, r: 16, t: 8, b: 36 },
      paper_bgcolor: 'rgba(0,0,0,0)', plot_bgcolor: 'rgba(0,0,0,0)',
      font: { family: 'system-ui, sans-serif', size: 12, color: '#1b1f24' },
      xaxis: { type: 'date', gridcolor: '#eaeef2', automargin: true },
      yaxis: { gridcolor: '#eaeef2', automargin: true, rangemode: 'tozero' },
      legend: { orientation: 'h', y: -0.18 },
      hovermode: 'x unified', showlegend: true
    };
    Object.keys(extra || {}).forEach(function (k) { layout[k] = extra[k]; });
    return layout;
  }
  function plot(id, traces, layout, config) {
    var node = $(id);
    if (!node) return;
    if (!window.Plotly) { node.textContent = 'plotly.js did not load'; return; }
    var old = node.querySelector('.chart-note');
    if (old) old.remove();
    var cfg = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ['lasso2d', 'select2d'] };
    Object.keys(config || {}).forEach(function (k) { cfg[k] = config[k]; });
    window.Plotly.react(node, traces, baseLayout(layout), cfg);
  }
  function chartNote(id, text) {
    var node = $(id);
    if (!node) return;
    if (window.Plotly && node.data) window.Plotly.purge(node);
    node.textContent = '';
    node.appendChild(el('p', { className: 'empty chart-note', text: text }));
  }
  function column(rows, key) { return rows.map(function (r) { return r[key] === undefined ? null : r[key]; }); }
  function mids(rows) {
    return rows.map(function (r) { return new Date((Date.parse(r.window_start) + Date.parse(r.window_end)) / 2).toISOString(); });
  }
  function band(x, lower, upper, color, name) {
    return {
      x: x.concat(x.slice().reverse()), y: upper.concat(lower.slice().reverse()), fill: 'toself',
      fillcolor: color + '22', line: { width: 0 }, hoverinfo: 'skip', showlegend: false, name: name, type: 'scatter', mode: 'lines'
    };
  }

  /* a table of rows; columns: [{key, label, num, render(row) -> Node|string}] */
  function fillTable(id, columns, rows, emptyText) {
    var table = $(id);
    if (!table) return;
    var caption = table.querySelector('caption');
    table.textContent = '';
    if (caption) table.appendChild(caption);
    var thead = el('thead'), tr = el('tr');
    columns.forEach(function (c) { tr.appendChild(el('th', { scope: 'col', text: c.label || c.key })); });
    thead.appendChild(tr);
    table.appendChild(thead);
    var tbody = el('tbody');
    if (!rows.length) {
      tbody.appendChild(el('tr', null, [el('td', { colspan: String(columns.length), className: 'empty', text: emptyText || 'Nothing in this range.' })]));
    }
    rows.forEach(function (row) {
      var r = el('tr');
      columns.forEach(function (c) {
        var value = c.render ? c.render(row) : fmt(row[c.key], c.digits);
        var td = el('td', { className: c.num ? 'num' : 'cell-text' });
        if (value instanceof Node) td.appendChild(value); else td.textContent = value;
        r.appendChild(td);
      });
      tbody.appendChild(r);
    });
    table.appendChild(tbody);
  }
  function genericColumns(cols) {
    return cols.map(function (k) {
      return { key: k, render: function (row) { var v = row[k]; return /_at$|^at$|^window_|^timestamp$|^ts$/.test(k) && typeof v === 'string' ? when(v) : fmt(v); } };
    });
  }

  // ------------------------------------------------------------------ page lifecycle

  var timer = null, generation = 0, loads = 0;
  /* fn, run only while the load that made it is the latest: a slow answer of an earlier
     load (an estimate, say) must not draw over the charts of the range chosen since */
  function fresh(fn) {
    var mine = generation;
    return function (x) { if (mine === generation) return fn(x); };
  }
  function run(load) {
    var s = readState();
    syncControls(s);
    carryLinks();
    var mine = ++generation;
    body.dataset.state = 'loading';
    status('Loading…');
    if (timer) { clearTimeout(timer); timer = null; }
    return Promise.resolve().then(function () { return load(s); }).then(function () {
      if (mine !== generation) return;
      loads += 1;
      body.dataset.loads = String(loads);
      body.dataset.state = 'ready';
      status('Updated ' + new Date().toLocaleTimeString() + (s.refresh !== '0' ? ' · refreshing every ' + s.refresh + ' s' : ''));
    }, function (e) {
      if (mine !== generation) return;
      body.dataset.state = 'error';
      status(e && e.message ? e.message : String(e), true);
      if (window.console && e && e.status === undefined) console.warn(e);
    }).then(function () {
      if (mine !== generation) return;
      var every = parseInt(s.refresh, 10);
      if (every > 0) timer = setTimeout(function () { run(load); }, every * 1000);
    });
  }
  function start(load) {
    var form = $('controls');
    if (form) {
      form.addEventListener('submit', function (ev) {
        ev.preventDefault();
        writeState(controlsState(), true);
        run(load);
      });
      ['range', 'step', 'version', 'refresh', 'alert-state'].forEach(function (id) {
        var c = $(id);
        if (c) c.addEventListener('change', function () { writeState(controlsState(), true); run(load); });
      });
    }
    window.addEventListener('popstate', function () { run(load); });
    $('key-button').hidden = !sessionStorage.getItem(KEY);
    $('key-button').addEventListener('click', function () {
      sessionStorage.removeItem(KEY);
      askKey('').then(function () { run(load); }, function () {});
    });
    run(load);
  }
  function setEnd(value) {
    var s = readState();
    s.end = value;
    writeState(s, true);
  }

  // ------------------------------------------------------------------ overview

  function keyMetric(info) { return (KEY_METRICS[info.task] || ['accuracy'])[0]; }

  function loadOverview(s) {
    return api('/models').then(function (list) {
      var models = list.models;
      $('models-empty').hidden = models.length > 0;
      return resolveWindow(s, function () { return latestOfAll(models); }).then(function (w) {
        return Promise.all([
          api('/alerts?state=firing'),
          pool(models, 4, function (m) { return overviewRow(m, w, s); })
        ]).then(fresh(function (res) {
          var firing = res[0].rows, rows = res[1];
          var tbody = $('models').querySelector('tbody');
          tbody.textContent = '';
          rows.forEach(function (r, i) {
            var m = models[i];
            var alerts = firing.filter(function (a) { return a.model === m.name; });
            var tr = el('tr', { 'data-model': m.name });
            var health = r.error ? badge('error', 'bad') : alerts.length ? badge('firing') : r.n === 0 ? badge('no data', 'none') : badge('ok');
            var spark = el('div', { className: 'spark', role: 'img', 'aria-label': 'predictions per ' + w.step + ' for ' + m.name });
            var sli = r.key ? el('span', null, [r.key + ' ', el('strong', { text: fmt(r.value) })]) : '—';
            var est = r.estimate !== undefined && r.estimate !== null ? el('span', null, [r.key + ' ≈ ', el('strong', { text: fmt(r.estimate) })]) : '—';
            var names = el('span', null, alerts.length ? [badge(String(alerts.length), 'firing'), ' ', alerts.map(function (a) { return a.rule; }).join(', ')] : ['none']);
            [link(modelUrl(m.name) + (carried() ? '?' + carried().slice(1) : ''), m.name), health, fmt(r.n), spark, sli, pct(r.coverage), est, names].forEach(function (v, k) {
              var td = el('td', { className: k === 2 || k === 5 ? 'num' : 'cell-text' });
              if (v instanceof Node) td.appendChild(v); else td.textContent = v;
              tr.appendChild(td);
            });
            tbody.appendChild(tr);
            if (r.counts && window.Plotly) {
              window.Plotly.newPlot(spark, [{ x: r.x, y: r.counts, type: 'scatter', mode: 'lines', fill: 'tozeroy', line: { color: COLORS[0], width: 1 }, hoverinfo: 'skip' }],
                { margin: { l: 0, r: 0, t: 0, b: 0 }, xaxis: { visible: false }, yaxis: { visible: false, rangemode: 'tozero' }, showlegend: false, paper_bgcolor: 'rgba(0,0,0,0)', plot_bgcolor: 'rgba(0,0,0,0)' },
                { staticPlot: true, displayModeBar: false });
            }
          });
        }));
      });
    });
  }
  function overviewRow(m, w, s) {
    var key = keyMetric(m);
    var base = '/models/' + enc(m.name) + '/versions/*/';
    var calls = [
      api(base + 'metrics?' + qs(w, s, { metrics: 'count', step: w.step })),
      api(base + 'metrics?' + qs(w, s, { metrics: key + ',label_coverage' }))
    ];
    if (m.task === 'binary') calls.push(optional(api(base + 'estimate?' + qs(w, s, { metrics: key }))));
    return Promise.all(calls).then(function (res) {
      var whole = res[1].rows[0] || {};
      var estimate = res[2] && res[2].rows && res[2].rows[0] ? res[2].rows[0][key] : null;
      return {
        key: key, x: mids(res[0].rows), counts: column(res[0].rows, 'n'), n: whole.n || 0,
        value: whole[key], coverage: whole.label_coverage, estimate: estimate
      };
    }, function (e) { if (e && e.status === 401) throw e; return { error: e.message, n: 0 }; });
  }

  // ------------------------------------------------------------------ model page

  var info = null;
  function modelInfo(name) {
    if (info && info.name === name) return Promise.resolve(info);
    return api('/models/' + enc(name)).then(function (i) {
      info = i;
      var v = $('version');
      if (v) i.versions.forEach(function (x) { ensureOption(v, x, x); });
      var seg = $('segment-choices');
      if (seg) {
        seg.textContent = '';
        i.segments.forEach(function (c) { seg.appendChild(el('option', { value: c + '=' })); });
      }
      return i;
    });
  }
  function versionPath(name, s) { return '/models/' + enc(name) + '/versions/' + enc(s.version || '*') + '/'; }

  /* drift per window: one call with `step`, or one call per window where the server
     answers a single window */
  function driftWindows(name, s, w, extra) {
    var bodyOf = function (start, end, step) {
      var b = { start: start, end: end };
      if (step) b.step = step;
      if (s.segment) b.segment = s.segment;
      Object.keys(extra || {}).forEach(function (k) { b[k] = extra[k]; });
      return b;
    };
    var path = versionPath(name, s) + 'drift';
    return api(path, { body: bodyOf(w.heatStart, w.heatEnd, w.heatStep) }).then(function (r) {
      var rows = r.columns || [];
      if (rows.length && rows[0].window_start !== undefined) return rows;
      var per = Array.isArray(r.timeline) && r.timeline.length ? r.timeline : Array.isArray(r.windows) ? r.windows : null;
      if (per) { // one report per window (DriftReport.timeline)
        var flat = [];
        per.forEach(function (win) {
          (win.columns || []).forEach(function (c) {
            var o = Object.assign({}, c);
            o.window_start = win.window_start || (win.window && win.window[0]);
            o.window_end = win.window_end || (win.window && win.window[1]);
            flat.push(o);
          });
        });
        return flat;
      }
      var starts = [], size = seconds(w.heatStep) * 1000, lo = Date.parse(w.heatStart);
      for (var i = 0; i < w.heatPoints; i++) starts.push(lo + i * size);
      return pool(starts, 4, function (t) {
        return api(path, { body: bodyOf(iso(t), iso(t + size)) }).then(function (one) {
          return (one.columns || []).map(function (c) {
            var o = Object.assign({}, c);
            o.window_start = iso(t); o.window_end = iso(t + size);
            return o;
          });
        });
      }).then(function (parts) { return [].concat.apply([], parts); });
    });
  }
  function driftScore(c) {
    if (c.n_current === 0 || c.statistic === null) return null;
    if (c.is_test) {
      var p = c.p_adjusted !== null && c.p_adjusted !== undefined ? c.p_adjusted : c.p_value;
      if (p === null || !(c.threshold > 0 && c.threshold < 1)) return null;
      return Math.log(Math.max(p, 1e-300)) / Math.log(c.threshold);
    }
    return c.threshold > 0 ? c.statistic / c.threshold : null;
  }

  function loadModel(s) {
    var name = body.dataset.model;
    return modelInfo(name).then(function (i) {
      $('model-info').textContent = i.task + ' model · versions ' + i.versions.join(', ') + ' · prediction ' + i.prediction +
        ' · label ' + i.label + (i.segments.length ? ' · segments ' + i.segments.join(', ') : '');
      return resolveWindow(s, function () { return latestData(name, s.version); });
    }).then(function (w) {
      var keys = KEY_METRICS[info.task] || ['accuracy'];
      var wanted = keys.concat(['label_coverage', 'latency_p50', 'latency_p95', 'latency_p99', 'prediction_mean']);
      if (info.task === 'binary') wanted.push('positive_rate');
      var base = versionPath(name, s);
      var driftBody = { start: w.start, end: w.end };
      if (s.segment) driftBody.segment = s.segment;
      var qualityBody = { start: w.heatStart, end: w.heatEnd, step: w.heatStep };
      if (s.segment) qualityBody.segment = s.segment;
      // each panel draws as soon as its call answers: the cheap profile queries first
      // first the point values (cheap merges of bucket profiles), then the confidence bands
      // and the label-free estimates (costlier), each redrawing the performance chart
      var metricsCall = api(base + 'metrics?' + qs(w, s, { metrics: wanted.join(','), step: w.step }));
      var bandCall = optional(api(base + 'metrics?' + qs(w, s, { metrics: keys.join(','), step: w.step, ci: '0.95' })));
      var estimateCall = info.task === 'binary'
        ? optional(api(base + 'estimate?' + qs({ start: w.heatStart, end: w.heatEnd }, s, { metrics: keys.join(','), step: w.heatStep })))
        : Promise.resolve(null);
      var latest = { metrics: null, band: null, estimate: null };
      function redraw() {
        var rows = latest.metrics.rows;
        if (latest.band && latest.band.rows && latest.band.rows.length === rows.length) {
          rows = rows.map(function (r, i) { return Object.assign({}, latest.band.rows[i], r); });
        }
        drawMetrics(rows, latest.estimate, keys);
      }
      return Promise.all([
        metricsCall.then(fresh(function (m) { latest.metrics = m; redraw(); })),
        Promise.all([metricsCall, bandCall]).then(fresh(function (r) { if (r[1] && !r[1].error) { latest.band = r[1]; redraw(); } })),
        Promise.all([metricsCall, estimateCall]).then(fresh(function (r) { if (r[1] && !r[1].error) { latest.estimate = r[1]; redraw(); } })),
        optional(api(base + 'drift', { body: driftBody })).then(fresh(function (d) { drawColumns(name, d); })),
        optional(driftWindows(name, s, w)).then(fresh(function (h) { drawHeatmap(name, h); })),
        optional(api(base + 'quality', { body: qualityBody })).then(fresh(function (q) { drawQuality(q); })),
        api('/alerts?model=' + enc(name)).then(fresh(function (a) { drawModelAlerts(a.rows); }))
      ]);
    });
  }

  function drawMetrics(metrics, estimate, keys) {
    var x = mids(metrics);
    var total = metrics.reduce(function (a, r) { return a + (r.n || 0); }, 0);
    $('empty-note').hidden = total > 0;

    plot('chart-volume', [{ x: x, y: column(metrics, 'n'), type: 'bar', name: 'predictions', marker: { color: COLORS[0] } },
      { x: x, y: column(metrics, 'n_labeled'), type: 'scatter', mode: 'lines', name: 'labeled', line: { color: COLORS[2] } }], { bargap: 0.1 });
    plot('chart-latency', ['latency_p50', 'latency_p95', 'latency_p99'].map(function (k, i) {
      return { x: x, y: column(metrics, k), type: 'scatter', mode: 'lines', name: k.replace('latency_', '') + ' ms', line: { color: COLORS[i] } };
    }), { yaxis: { title: { text: 'ms' }, rangemode: 'tozero', gridcolor: '#eaeef2' } });
    var pred = [{ x: x, y: column(metrics, 'prediction_mean'), type: 'scatter', mode: 'lines', name: 'mean prediction', line: { color: COLORS[0] } }];
    if (info.task === 'binary') pred.push({ x: x, y: column(metrics, 'positive_rate'), type: 'scatter', mode: 'lines', name: 'positive rate', line: { color: COLORS[1], dash: 'dot' } });
    plot('chart-predictions', pred);

    var traces = [];
    keys.forEach(function (k, i) {
      var color = COLORS[i];
      if (metrics.length && metrics[0][k + '_lower'] !== undefined) traces.push(band(x, column(metrics, k + '_lower'), column(metrics, k + '_upper'), color, k + ' 95% CI'));
      traces.push({ x: x, y: column(metrics, k), type: 'scatter', mode: 'lines+markers', marker: { size: 4 }, name: k, line: { color: color } });
      if (estimate && estimate.rows && estimate.rows.length && estimate.rows[0][k] !== undefined) {
        var ex = mids(estimate.rows);
        if (estimate.rows[0][k + '_lower'] !== undefined) traces.push(band(ex, column(estimate.rows, k + '_lower'), column(estimate.rows, k + '_upper'), color, k + ' estimate band'));
        traces.push({ x: ex, y: column(estimate.rows, k), type: 'scatter', mode: 'lines', name: k + ' (estimated)', line: { color: color, dash: 'dash' } });
      }
    });
    traces.push({ x: x, y: column(metrics, 'label_coverage'), type: 'scatter', mode: 'lines', name: 'label coverage', yaxis: 'y2', line: { color: '#6c757d', width: 1, dash: 'dot' } });
    plot('chart-sli', traces, {
      yaxis: { gridcolor: '#eaeef2', automargin: true },
      yaxis2: { overlaying: 'y', side: 'right', range: [0, 1.05], tickformat: '.0%', showgrid: false, title: { text: 'labeled' } },
      margin: { l: 48, r: 48, t: 8, b: 36 }
    });

  }

  /* the columns over the whole range */
  function drawColumns(name, drift) {
    if (drift && !drift.error) {
      fillTable('features', [
        { key: 'column', label: 'Column', render: function (r) { return info.features[r.column] !== undefined ? link(featureUrl(name, r.column), r.column) : r.column; } },
        { key: 'kind', label: 'Kind' }, { key: 'method', label: 'Method' },
        { key: 'statistic', label: 'Statistic', num: true }, { key: 'threshold', label: 'Threshold', num: true },
        { key: 'p_value', label: 'p-value', num: true, digits: 4 },
        { key: 'n_current', label: 'Rows', num: true },
        { key: 'drifted', label: 'Drift', render: function (r) { return r.drifted ? badge('drifted', 'bad') : badge('no', 'ok'); } }
      ], drift.columns, 'No rows in this range.');
    } else {
      fillTable('features', [{ key: 'note', label: 'Drift' }], [{ note: drift ? drift.error : '' }]);
    }
  }

  function drawModelAlerts(alerts) {
    var active = alerts.filter(function (a) { return a.state !== 'resolved'; });
    $('alerts-section').hidden = active.length === 0;
    fillTable('model-alerts', [
      { key: 'state', label: 'State', render: function (r) { return badge(r.state); } },
      { key: 'rule', label: 'Rule' }, { key: 'value', label: 'Value', num: true }, { key: 'threshold', label: 'Threshold', num: true },
      { key: 'started_at', label: 'Since', render: function (r) { return when(r.started_at); } },
      { key: 'incident', label: 'Incident', render: function (r) { return r.incident !== null && r.incident !== undefined ? link(ROOT + '/incidents/' + enc(r.incident), '#' + r.incident) : '—'; } }
    ], active);
  }

  function drawHeatmap(name, heat) {
    if (!heat || heat.error) { chartNote('chart-drift', 'Drift is not available: ' + (heat ? heat.error : '')); return; }
    if (!heat.length) { chartNote('chart-drift', 'No columns to compare.'); return; }
    var times = [], cols = [], cells = {};
    heat.forEach(function (c) {
      if (times.indexOf(c.window_start) < 0) times.push(c.window_start);
      if (cols.indexOf(c.column) < 0) cols.push(c.column);
      cells[c.column + '\u0000' + c.window_start] = c;
    });
    times.sort();
    var z = [], text = [];
    cols.forEach(function (col) {
      var zr = [], tr = [];
      times.forEach(function (t) {
        var c = cells[col + '\u0000' + t];
        var score = c ? driftScore(c) : null;
        zr.push(score === null ? null : Math.min(score, 5));
        tr.push(c ? esc(col) + '<br>' + esc(when(t)) + '<br>' + esc(c.method) + ' ' + fmt(c.statistic) +
          (c.p_value !== null ? ' (p ' + fmt(c.p_value, 4) + ')' : '') + ' · threshold ' + fmt(c.threshold) +
          '<br>' + (c.drifted ? 'drifted' : 'no drift') + ' · ' + fmt(c.n_current) + ' rows' : '');
      });
      z.push(zr); text.push(tr);
    });
    plot('chart-drift', [{
      type: 'heatmap', x: times, y: cols.map(esc), z: z, text: text, hoverinfo: 'text', zmin: 0, zmax: 2,
      colorscale: [[0, '#f1f8ff'], [0.45, '#c8e1ff'], [0.5, '#ffd8a8'], [1, '#b3261e']], xgap: 1, ygap: 1,
      colorbar: { title: { text: 'stat ÷ thr' }, thickness: 10 }
    }], { hovermode: 'closest', showlegend: false, yaxis: { automargin: true, type: 'category' }, margin: { l: 8, r: 8, t: 8, b: 36 } });
    var node = $('chart-drift');
    if (node && node.on) {
      node.on('plotly_click', function (ev) {
        var p = ev && ev.points && ev.points[0];
        if (p && info.features[cols[p.pointIndex[0]]] !== undefined) location.href = featureUrl(name, cols[p.pointIndex[0]]);
      });
    }
  }

  function drawQuality(quality, onlyColumn) {
    var id = onlyColumn === undefined ? 'chart-quality' : 'chart-feature-quality';
    if (!quality || quality.error) { chartNote(id, 'Quality is not available: ' + (quality ? quality.error : '')); return []; }
    var rows = quality.rows.filter(function (r) { return onlyColumn === undefined || r.column === onlyColumn; });
    var times = [], series = {};
    rows.forEach(function (r) {
      if (times.indexOf(r.window_start) < 0) times.push(r.window_start);
      var k = r.column + ' · ' + r.rule;
      (series[k] = series[k] || {})[r.window_start] = r.violations;
    });
    times.sort();
    var keys = Object.keys(series).filter(function (k) { return times.some(function (t) { return series[k][t] > 0; }); });
    var traces = keys.map(function (k, i) {
      return { x: times, y: times.map(function (t) { return series[k][t] || 0; }), type: 'bar', name: esc(k), marker: { color: COLORS[i % COLORS.length] } };
    });
    if (!traces.length) traces = [{ x: times, y: times.map(function () { return 0; }), type: 'bar', name: 'violations', marker: { color: COLORS[2] } }];
    plot(id, traces, { barmode: 'stack', xaxis: { type: 'date', gridcolor: '#eaeef2', automargin: true } });
    // the whole range: sums per column and rule
    var sums = {};
    rows.forEach(function (r) {
      var k = r.column + '\u0000' + r.rule;
      var t = sums[k] = sums[k] || { column: r.column, rule: r.rule, violations: 0, rows: 0 };
      t.violations += r.violations || 0; t.rows += r.rows || 0;
    });
    var list = Object.keys(sums).map(function (k) { var t = sums[k]; t.rate = t.rows ? t.violations / t.rows : null; return t; });
    if (onlyColumn === undefined) {
      fillTable('violations', [{ key: 'column', label: 'Column' }, { key: 'rule', label: 'Rule' },
        { key: 'violations', label: 'Violations', num: true }, { key: 'rows', label: 'Rows', num: true },
        { key: 'rate', label: 'Rate', num: true, render: function (r) { return pct(r.rate); } }],
        list.filter(function (t) { return t.violations > 0; }), 'No violations in this range.');
    }
    return list;
  }

  // ------------------------------------------------------------------ feature page

  function loadFeature(s) {
    var name = body.dataset.model, col = body.dataset.column;
    return modelInfo(name).then(function (i) {
      var kind = i.features[col];
      $('feature-info').textContent = (kind ? kind + ' feature' : 'column') + ' of ' + name;
      return resolveWindow(s, function () { return latestData(name, s.version); });
    }).then(function (w) {
      var base = versionPath(name, s);
      var seg = s.segment ? { segment: s.segment } : {};
      var one = function (extra) { return Object.assign({ columns: [col] }, seg, extra); };
      return Promise.all([
        api(base + 'summary?' + qs(w, s, { step: w.step })),
        optional(driftWindows(name, s, w, { columns: [col] })),
        optional(api(base + 'drift', { body: one({ start: w.start, end: w.end }) })),
        optional(api(base + 'drift', { body: one({ start: w.start, end: w.end, against: { start: w.prevStart, end: w.prevEnd } }) })),
        api(base + 'summary?' + qs(w, s, {})),
        api(base + 'summary?' + qs({ start: w.prevStart, end: w.prevEnd }, s, {})),
        optional(api(base + 'quality', { body: Object.assign({ start: w.heatStart, end: w.heatEnd, step: w.heatStep }, seg) }))
      ]).then(fresh(function (res) { drawFeature(col, w, res); }));
    });
  }

  function drawFeature(col, w, res) {
    var series = res[0].rows.filter(function (r) { return r.column === col; });
    var x = mids(series);
    var numeric = series.some(function (r) { return r.kind === 'numeric'; }) || info.features[col] === 'numeric';
    if (numeric) {
      var mean = column(series, 'mean'), std = column(series, 'std');
      var lo = mean.map(function (m, i) { return m === null || std[i] === null ? null : m - std[i]; });
      var hi = mean.map(function (m, i) { return m === null || std[i] === null ? null : m + std[i]; });
      plot('chart-distribution', [
        band(x, lo, hi, COLORS[0], 'mean ± std'),
        { x: x, y: mean, type: 'scatter', mode: 'lines', name: 'mean', line: { color: COLORS[0] } },
        { x: x, y: column(series, 'p50'), type: 'scatter', mode: 'lines', name: 'median', line: { color: COLORS[1], dash: 'dot' } },
        { x: x, y: column(series, 'min'), type: 'scatter', mode: 'lines', name: 'min', line: { color: '#9aa4ae', width: 1 } },
        { x: x, y: column(series, 'max'), type: 'scatter', mode: 'lines', name: 'max', line: { color: '#9aa4ae', width: 1 } }
      ], { yaxis: { gridcolor: '#eaeef2', automargin: true } });
    } else {
      plot('chart-distribution', [
        { x: x, y: column(series, 'distinct'), type: 'scatter', mode: 'lines+markers', name: 'distinct values', line: { color: COLORS[0] } },
        { x: x, y: column(series, 'missing'), type: 'bar', name: 'missing', marker: { color: COLORS[1] } }
      ], {});
    }
    var heat = res[1];
    if (heat && !heat.error) {
      var mine = heat.filter(function (c) { return c.column === col; }).sort(function (a, b) { return a.window_start < b.window_start ? -1 : 1; });
      var hx = mids(mine);
      var isTest = mine.some(function (c) { return c.is_test; });
      plot('chart-feature-drift', [
        { x: hx, y: mine.map(function (c) { return isTest ? (c.p_adjusted !== null && c.p_adjusted !== undefined ? c.p_adjusted : c.p_value) : c.statistic; }), type: 'scatter', mode: 'lines+markers', name: isTest ? 'p-value' : 'statistic', line: { color: COLORS[0] },
          text: mine.map(function (c) { return esc(c.method) + (c.drifted ? ' · drifted' : ''); }) },
        { x: hx, y: column(mine, 'threshold'), type: 'scatter', mode: 'lines', name: 'threshold', line: { color: COLORS[1], dash: 'dash' } }
      ], isTest ? { yaxis: { type: 'log', gridcolor: '#eaeef2' } } : {});
    } else {
      chartNote('chart-feature-drift', 'Drift is not available: ' + (heat ? heat.error : ''));
    }
    // this window, the previous window (and the reference's size from the drift test)
    var cur = res[4].rows.filter(function (r) { return r.column === col; })[0] || {};
    var prev = res[5].rows.filter(function (r) { return r.column === col; })[0] || {};
    var stats = numeric ? ['min', 'p50', 'mean', 'max'] : ['distinct', 'missing', 'count'];
    plot('chart-compare', [
      { x: stats, y: stats.map(function (k) { return prev[k] === undefined ? null : prev[k]; }), type: 'bar', name: 'previous window', marker: { color: '#9aa4ae' } },
      { x: stats, y: stats.map(function (k) { return cur[k] === undefined ? null : cur[k]; }), type: 'bar', name: 'this window', marker: { color: COLORS[0] } }
    ], { barmode: 'group', xaxis: { type: 'category' }, hovermode: 'closest' });
    var fields = ['count', 'missing', 'type_errors', 'mean', 'std', 'min', 'p50', 'max', 'distinct', 'top'];
    fillTable('feature-summary', [{ key: 'stat', label: 'Statistic' }, { key: 'cur', label: 'This window', num: true }, { key: 'prev', label: 'Previous window', num: true }],
      fields.map(function (k) { return { stat: k, cur: fmt(cur[k]), prev: fmt(prev[k]) }; }));
    var tests = [];
    [[res[2], 'reference'], [res[3], 'previous window']].forEach(function (pair) {
      var r = pair[0];
      if (r && !r.error) (r.columns || []).filter(function (c) { return c.column === col; }).forEach(function (c) { tests.push(Object.assign({ against: pair[1] }, c)); });
    });
    fillTable('feature-drift', [{ key: 'against', label: 'Against' }, { key: 'method', label: 'Method' },
      { key: 'statistic', label: 'Statistic', num: true }, { key: 'threshold', label: 'Threshold', num: true },
      { key: 'p_value', label: 'p-value', num: true, digits: 4 }, { key: 'n_reference', label: 'Baseline rows', num: true },
      { key: 'n_current', label: 'Rows', num: true },
      { key: 'drifted', label: 'Drift', render: function (r) { return r.drifted ? badge('drifted', 'bad') : badge('no', 'ok'); } }], tests);
    var list = drawQuality(res[6], col);
    fillTable('feature-rules', [{ key: 'rule', label: 'Rule' }, { key: 'violations', label: 'Violations', num: true },
      { key: 'rows', label: 'Rows', num: true }, { key: 'rate', label: 'Rate', num: true, render: function (r) { return pct(r.rate); } }], list || []);
  }

  // ------------------------------------------------------------------ alerts, incidents

  function loadAlerts(s) {
    return Promise.all([
      api('/alerts' + (s.state ? '?state=' + enc(s.state) : '')), api('/incidents'), api('/silences')
    ]).then(function (res) {
      fillTable('alerts', [
        { key: 'state', label: 'State', render: function (r) { return badge(r.state); } },
        { key: 'rule', label: 'Rule' },
        { key: 'model', label: 'Model', render: function (r) { return r.model ? link(modelUrl(r.model), r.model) : '—'; } },
        { key: 'value', label: 'Value', num: true }, { key: 'threshold', label: 'Threshold', num: true },
        { key: 'started_at', label: 'Started', render: function (r) { return when(r.started_at); } },
        { key: 'fired_at', label: 'Fired', render: function (r) { return when(r.fired_at); } },
        { key: 'resolved_at', label: 'Resolved', render: function (r) { return when(r.resolved_at); } },
        { key: 'summary', label: 'Summary', render: function (r) { return r.annotations && r.annotations.summary ? r.annotations.summary : ''; } },
        { key: 'incident', label: 'Incident', render: function (r) { return r.incident !== null && r.incident !== undefined ? link(ROOT + '/incidents/' + enc(r.incident), '#' + r.incident) : '—'; } }
      ], res[0].rows, 'No alerts.');
      fillTable('incidents', [
        { key: 'id', label: 'Id', render: function (r) { return link(ROOT + '/incidents/' + enc(r.id), '#' + r.id); } },
        { key: 'status', label: 'Status', render: function (r) { return badge(r.status); } },
        { key: 'title', label: 'Title' },
        { key: 'opened_at', label: 'Opened', render: function (r) { return when(r.opened_at); } },
        { key: 'resolved_at', label: 'Resolved', render: function (r) { return when(r.resolved_at); } },
        { key: 'models', label: 'Models', render: function (r) { return (r.models || []).join(', '); } },
        { key: 'alerts', label: 'Alerts', render: function (r) { return (r.alerts || []).join(', '); } }
      ], res[1].rows, 'No incidents.');
      fillTable('silences', [
        { key: 'id', label: 'Id' }, { key: 'matchers', label: 'Matchers' },
        { key: 'starts_at', label: 'Starts', render: function (r) { return when(r.starts_at); } },
        { key: 'ends_at', label: 'Ends', render: function (r) { return when(r.ends_at); } },
        { key: 'active', label: 'Active', render: function (r) { return r.active ? badge('active', 'warn') : badge('expired', 'none'); } },
        { key: 'comment', label: 'Comment' }, { key: 'created_by', label: 'By' }
      ], res[2].rows, 'No silences.');
    });
  }

  function loadIncident() {
    var id = body.dataset.incident;
    return api('/incidents/' + enc(id)).then(function (inc) {
      $('incident-title').textContent = 'Incident ' + inc.id + ': ' + inc.title;
      var facts = $('incident-facts');
      facts.textContent = '';
      [['Status', badge(inc.status)], ['Opened', when(inc.opened_at)], ['Acknowledged', when(inc.acknowledged_at)],
        ['Resolved', when(inc.resolved_at)], ['Models', el('span', null, inc.models.map(function (m, i) { return el('span', null, [i ? ', ' : '', link(modelUrl(m), m)]); }))]
      ].forEach(function (f) { facts.appendChild(el('dt', { text: f[0] })); facts.appendChild(el('dd', null, [f[1]])); });
      fillTable('incident-alerts', genericColumns(['state', 'rule', 'model', 'value', 'threshold', 'started_at', 'fired_at', 'resolved_at']), inc.alerts);
      fillTable('timeline', genericColumns(['at', 'kind', 'detail']), inc.timeline);
      return optional(api('/incidents/' + enc(id) + '/root_cause')).then(function (cause) {
        var note = $('cause-note');
        if (!cause || cause.error) {
          note.hidden = false;
          note.textContent = 'The root cause is not available: ' + (cause ? cause.error : '');
          fillTable('root-cause', [{ key: 'x', label: '' }], [], '—');
          return;
        }
        note.hidden = true;
        fillTable('root-cause', [
          { key: 'rank', label: 'Rank', num: true }, { key: 'kind', label: 'Kind' },
          { key: 'subject', label: 'Subject' }, { key: 'score', label: 'Score', num: true },
          { key: 'detail', label: 'Detail' }
        ], cause.rows, 'No likely cause found.');
      });
    });
  }

  // ------------------------------------------------------------------ rows explorer

  function loadRows(s) {
    var name = body.dataset.model;
    return modelInfo(name).then(function () {
      return resolveWindow(s, function () { return latestData(name, s.version); });
    }).then(function (w) {
      var limit = parseInt($('rows-limit').value, 10);
      var request = { start: w.start, end: w.end, limit: limit };
      var where = $('rows-where').value.trim() || s.segment;
      if (where) {
        var at = where.indexOf('=');
        if (at < 1) return Promise.reject(new ApiError(400, 'Where: write column=value, such as plan=pro'));
        var col = where.slice(0, at), value = where.slice(at + 1);
        request.where = {};
        request.where[col] = info.features[col] === 'numeric' && value.trim() !== '' && isFinite(Number(value)) ? Number(value) : value;
      }
      var ids = $('rows-ids').value.trim();
      if (ids) request.ids = ids.split(',').map(function (x) { return x.trim(); }).filter(Boolean);
      return Promise.all([
        optional(api(versionPath(name, s) + 'rows', { body: request })),
        api('/models/' + enc(name) + '/quarantine' + (s.version && s.version !== '*' ? '?version=' + enc(s.version) : ''))
      ]).then(function (res) {
        var rows = res[0];
        if (rows && !rows.error) {
          $('rows-note').textContent = rows.rows.length + ' rows' + (rows.rows.length >= limit ? ' (the limit; narrow the range or filter)' : '');
          fillTable('rows', genericColumns(rows.columns || (rows.rows[0] ? Object.keys(rows.rows[0]) : [])), rows.rows, 'No rows in this range.');
        } else {
          $('rows-note').textContent = 'Raw rows are not available: ' + (rows ? rows.error : '');
          fillTable('rows', [{ key: 'x', label: '' }], [], '—');
        }
        var q = res[1].rows.slice();
        var stamp = q.length && q[0].received_at !== undefined ? 'received_at' : null;
        if (stamp) q.sort(function (a, b) { return a[stamp] < b[stamp] ? 1 : a[stamp] > b[stamp] ? -1 : 0; });
        var shown = q.slice(0, 500);
        $('quarantine-note').textContent = q.length + ' quarantined rows' + (q.length > shown.length ? ', the first 500 shown' : '');
        fillTable('quarantine', genericColumns(shown.length ? Object.keys(shown[0]) : ['received_at', 'reason', 'row']), shown, 'No quarantined rows in this range.');
      });
    });
  }

  // ------------------------------------------------------------------ start

  var jump = $('jump-latest');
  if (jump) jump.addEventListener('click', function () { setEnd('latest'); run(loadModel); });
  var rowsForm = $('rows-filter');
  if (rowsForm) rowsForm.addEventListener('submit', function (ev) { ev.preventDefault(); run(loadRows); });

  var pages = { overview: loadOverview, model: loadModel, feature: loadFeature, alerts: loadAlerts, incident: loadIncident, rows: loadRows };
  var load = pages[body.dataset.page];
  if (load) start(load);
})();
