// Roll map page: line status, and a canvas map of one roll's defects and
// uninspected ranges, kept up to date by polling the JSON API.
//
// Polling: /api/status every second; the shown roll's new defects every
// second (/api/rolls/{id}/defects?after=lastID, paging until caught up);
// the roll's summary and uninspected ranges every 2 s; the roll list every
// 10 s. Responses for a roll that is no longer shown are dropped.
'use strict';

(() => {
  const PAGE = 10000;          // defects per request (the API's maximum)
  const MAX_DEFECTS = 500000;  // stop loading beyond this many (browser memory)
  const MIN_PX = 3;            // smallest drawn defect, CSS pixels
  const MARGIN = { left: 60, top: 26, right: 18, bottom: 8 }; // right: room for half the last CD label
  // Colour-blind-friendly palette; classes take colours in order of appearance.
  const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#edc948',
    '#76b7b2', '#ff9da7', '#9c755f', '#e15759', '#3b3b3b'];

  const $ = (id) => document.getElementById(id);
  const canvas = $('rollmap');
  const ctx = canvas.getContext('2d');
  const tip = $('tip');

  const state = {
    status: null,          // last engine.Status, or null
    follow: true,          // show the roll the engine is writing
    rollId: '',            // roll shown
    roll: null,            // its RollInfo (+ uninspected)
    uninspected: [],
    defects: [],           // in defect_id order
    lastID: 0,
    full: false,           // MAX_DEFECTS reached
    gen: 0,                // bumped on every roll switch
    view: '50',            // metres in the window, or 'whole'
    hover: null,
    selected: null,
    colours: new Map(),    // class -> colour
    dirty: true,
  };

  // ---- API ----------------------------------------------------------------

  async function getJSON(url) {
    const res = await fetch(url, { cache: 'no-store', headers: { Accept: 'application/json' } });
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) {
      const err = new Error((body && body.error) || `${res.status} ${res.statusText}`);
      err.status = res.status;
      throw err;
    }
    return body;
  }

  const rollURL = (id) => '/api/rolls/' + encodeURIComponent(id);

  function message(text) { $('message').textContent = text || ''; }

  // ---- status -------------------------------------------------------------

  const fmt = {
    int: (n) => (n == null ? '–' : Math.round(n).toLocaleString('en-US')),
    num: (n, d) => (n == null || !isFinite(n) ? '–' : n.toFixed(d)),
  };

  function colourOf(cls) {
    let c = state.colours.get(cls);
    if (!c) {
      c = PALETTE[state.colours.size % PALETTE.length];
      state.colours.set(cls, c);
      renderLegend();
    }
    return c;
  }

  function swatch(colour, extraClass) {
    const s = document.createElement('span');
    s.className = 'swatch' + (extraClass ? ' ' + extraClass : '');
    if (colour) s.style.background = colour;
    return s;
  }

  async function pollStatus() {
    let st = null;
    try {
      st = await getJSON('/api/status');
      $('st-error').textContent = '';
    } catch (e) {
      $('st-error').textContent = e.status === 503 ? 'No engine is running.' : 'Status: ' + e.message;
    }
    state.status = st;
    renderStatus(st);
    if (state.follow) {
      const live = st && st.roll_id ? st.roll_id : newestRoll();
      if (live && live !== state.rollId) switchRoll(live);
    }
    state.dirty = true;
  }

  function renderStatus(st) {
    const s = st || {};
    const stateEl = $('st-state');
    stateEl.textContent = s.state || '–';
    stateEl.className = s.state || '';
    $('st-roll').textContent = s.roll_id || '–';
    $('st-speed').textContent = fmt.num(s.speed_m_per_min, 1);
    $('st-md').textContent = fmt.num(s.md_m, 2);
    $('st-lines').textContent = fmt.int(s.lines_in);
    $('st-dropped').textContent = fmt.int(s.blocks_dropped);
    $('st-uninspected').textContent = fmt.num(s.uninspected_m, 2);
    $('st-defects').textContent = fmt.int(s.defects);
    const ul = $('st-classes');
    ul.replaceChildren();
    const byClass = s.defects_by_class || {};
    for (const cls of Object.keys(byClass).sort()) {
      const li = document.createElement('li');
      const name = document.createElement('span');
      name.textContent = cls || '(none)';
      const n = document.createElement('span');
      n.className = 'n';
      n.textContent = fmt.int(byClass[cls]);
      li.append(swatch(colourOf(cls)), name, n);
      ul.append(li);
    }
  }

  // ---- rolls --------------------------------------------------------------

  let rollList = [];

  // The newest roll, followed when no engine reports a live one.
  function newestRoll() {
    return rollList.length ? rollList[0].id : '';
  }

  async function pollRollList() {
    try {
      const body = await getJSON('/api/rolls');
      rollList = body.rolls || [];
      const sel = $('roll-select');
      const keep = sel.value;
      sel.replaceChildren(new Option('Live (current roll)', ''));
      for (const r of rollList) {
        const started = r.started ? new Date(r.started).toLocaleString() : '';
        const label = `${r.id}${r.open ? ' (open)' : ''} · ${fmt.num(r.length_m, 0)} m · ${started}`;
        sel.append(new Option(label, r.id));
      }
      sel.value = keep;
      if (sel.value !== keep) sel.value = '';
      message(body.warning ? 'Some rolls could not be read: ' + body.warning : '');
    } catch (e) {
      message('Roll list: ' + e.message);
    }
  }

  function switchRoll(id) {
    state.gen++;
    state.rollId = id;
    state.roll = null;
    state.uninspected = [];
    state.defects = [];
    state.lastID = 0;
    state.full = false;
    state.hover = null;
    state.selected = null;
    renderDetail(null);
    $('map-title').textContent = id ? 'Roll ' + id : 'No roll';
    state.dirty = true;
    if (id) { pollRoll(); pollDefects(); }
  }

  async function pollRoll() {
    const id = state.rollId, gen = state.gen;
    if (!id) return;
    try {
      const roll = await getJSON(rollURL(id));
      if (gen !== state.gen) return;
      state.roll = roll;
      state.uninspected = roll.uninspected || [];
      state.dirty = true;
    } catch (e) {
      if (gen === state.gen) message(`Roll ${id}: ${e.message}`);
    }
  }

  let loadingDefects = false;

  async function pollDefects() {
    if (loadingDefects || !state.rollId || state.full) return;
    loadingDefects = true;
    const id = state.rollId, gen = state.gen;
    try {
      // Page until caught up: a page shorter than PAGE is the end.
      for (;;) {
        const url = `${rollURL(id)}/defects?after=${state.lastID}&limit=${PAGE}`;
        const page = await getJSON(url);
        if (gen !== state.gen) return;
        for (const d of page.defects) colourOf(d.class);
        state.defects.push(...page.defects);
        if (page.next_after != null) state.lastID = page.next_after;
        state.dirty = true;
        if (state.defects.length >= MAX_DEFECTS) {
          state.full = true;
          message(`Showing the first ${fmt.int(state.defects.length)} defects only.`);
          break;
        }
        if (page.defects.length < PAGE) break;
      }
    } catch (e) {
      if (gen === state.gen) message(`Defects of ${id}: ${e.message}`);
    } finally {
      loadingDefects = false;
    }
  }

  // ---- geometry -----------------------------------------------------------

  function liveRoll() {
    const st = state.status;
    return st && st.roll_id === state.rollId ? st : null;
  }

  // Geometry of the plot for the current canvas size and view.
  function geometry() {
    const w = canvas.clientWidth, h = canvas.clientHeight;
    const pw = Math.max(10, w - MARGIN.left - MARGIN.right);
    const ph = Math.max(10, h - MARGIN.top - MARGIN.bottom);
    const live = liveRoll();
    let width = (state.roll && state.roll.web_width_mm) || (live && live.web_width_mm) || 0;
    let mdNow = Math.max((state.roll && state.roll.length_m) || 0, (live && live.md_m) || 0);
    for (const d of state.defects) mdNow = Math.max(mdNow, d.md_end_m);
    if (!(width > 0)) {
      width = 1000;
      for (const d of state.defects) width = Math.max(width, d.cd_end_mm);
    }
    let md0, md1;
    if (state.view === 'whole') {
      md0 = 0; md1 = Math.max(mdNow, 1);
    } else {
      const span = Number(state.view);
      md1 = Math.max(mdNow, span); md0 = md1 - span;
    }
    return {
      w, h, pw, ph, width, md0, md1, mdNow, live: !!live,
      x: (cd) => MARGIN.left + (cd / width) * pw,
      y: (md) => MARGIN.top + ((md - md0) / (md1 - md0)) * ph,
    };
  }

  // Screen rectangle of a defect, at least MIN_PX on each side.
  function rectOf(d, g) {
    let x0 = g.x(d.cd_start_mm), x1 = g.x(d.cd_end_mm);
    let y0 = g.y(d.md_start_m), y1 = g.y(d.md_end_m);
    if (x1 - x0 < MIN_PX) { const c = (x0 + x1) / 2; x0 = c - MIN_PX / 2; x1 = c + MIN_PX / 2; }
    if (y1 - y0 < MIN_PX) { const c = (y0 + y1) / 2; y0 = c - MIN_PX / 2; y1 = c + MIN_PX / 2; }
    return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
  }

  // niceStep returns a 1-2-5 step giving about n ticks over span.
  function niceStep(span, n) {
    const raw = span / Math.max(1, n);
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }

  // ---- drawing ------------------------------------------------------------

  let hatch = null;
  function hatchPattern() {
    if (hatch) return hatch;
    const c = document.createElement('canvas');
    c.width = c.height = 8;
    const h = c.getContext('2d');
    h.fillStyle = 'rgba(198,40,40,0.15)';
    h.fillRect(0, 0, 8, 8);
    h.strokeStyle = 'rgba(198,40,40,0.7)';
    h.lineWidth = 1.5;
    h.beginPath();
    h.moveTo(-2, 10); h.lineTo(10, -2);
    h.moveTo(-2, 2); h.lineTo(2, -2);
    h.moveTo(6, 10); h.lineTo(10, 6);
    h.stroke();
    hatch = ctx.createPattern(c, 'repeat');
    return hatch;
  }

  // Fit the bitmap to the canvas's CSS size and redraw at once. Setting
  // canvas.width clears the bitmap, and a ResizeObserver callback runs after
  // layout but before paint: drawing here puts the new map in the same frame.
  // Leaving it to the next frame() tick showed a blank canvas for up to 200 ms
  // after every resize, and a headless --screenshot, which grows the viewport
  // just before it captures, caught that blank frame every time.
  function resize() {
    const dpr = window.devicePixelRatio || 1;
    const bw = Math.round(canvas.clientWidth * dpr), bh = Math.round(canvas.clientHeight * dpr);
    if (canvas.width !== bw || canvas.height !== bh) {
      canvas.width = bw;
      canvas.height = bh;
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    state.dirty = false;
    draw();
  }

  function draw() {
    const g = geometry();
    ctx.clearRect(0, 0, g.w, g.h);
    ctx.font = '11px system-ui, sans-serif';

    // Web area and grid.
    ctx.fillStyle = '#fbfbfc';
    ctx.fillRect(MARGIN.left, MARGIN.top, g.pw, g.ph);
    ctx.strokeStyle = '#e6e8ec';
    ctx.fillStyle = '#667085';
    ctx.lineWidth = 1;
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    const mdStep = niceStep(g.md1 - g.md0, g.ph / 60);
    for (let m = Math.ceil(g.md0 / mdStep) * mdStep; m <= g.md1 + 1e-9; m += mdStep) {
      const y = Math.round(g.y(m)) + 0.5;
      ctx.beginPath(); ctx.moveTo(MARGIN.left, y); ctx.lineTo(MARGIN.left + g.pw, y); ctx.stroke();
      ctx.fillText(`${+m.toFixed(3)} m`, MARGIN.left - 6, y);
    }
    ctx.textAlign = 'center'; ctx.textBaseline = 'bottom';
    const cdStep = niceStep(g.width, g.pw / 90);
    for (let c = 0; c <= g.width + 1e-9; c += cdStep) {
      const x = Math.round(g.x(c)) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, MARGIN.top); ctx.lineTo(x, MARGIN.top + g.ph); ctx.stroke();
      ctx.fillText(`${+c.toFixed(1)}`, x, MARGIN.top - 4);
    }
    ctx.textAlign = 'left';
    ctx.fillText('CD mm', 4, MARGIN.top - 4);

    ctx.save();
    ctx.beginPath();
    ctx.rect(MARGIN.left, MARGIN.top, g.pw, g.ph);
    ctx.clip();

    // Uninspected ranges: hatched red over their CD band.
    ctx.fillStyle = hatchPattern();
    for (const u of state.uninspected) {
      if (u.md_end_m < g.md0 || u.md_start_m > g.md1) continue;
      const full = !(u.cd_end_mm > u.cd_start_mm);
      const x0 = full ? MARGIN.left : g.x(u.cd_start_mm);
      const x1 = full ? MARGIN.left + g.pw : g.x(u.cd_end_mm);
      const y0 = g.y(u.md_start_m);
      const hgt = Math.max(2, g.y(u.md_end_m) - y0);
      ctx.fillRect(x0, y0, x1 - x0, hgt);
    }

    // Defects, one fillStyle per class.
    const byColour = new Map();
    let shown = 0;
    for (const d of state.defects) {
      if (d.md_end_m < g.md0 || d.md_start_m > g.md1) continue;
      shown++;
      const c = colourOf(d.class);
      let list = byColour.get(c);
      if (!list) byColour.set(c, (list = []));
      list.push(d);
    }
    for (const [colour, list] of byColour) {
      ctx.fillStyle = colour;
      for (const d of list) {
        const r = rectOf(d, g);
        ctx.fillRect(r.x, r.y, r.w, r.h);
      }
    }
    for (const [d, style] of [[state.selected, '#1d2430'], [state.hover, '#1f6feb']]) {
      if (!d) continue;
      const r = rectOf(d, g);
      ctx.strokeStyle = style; ctx.lineWidth = 2;
      ctx.strokeRect(r.x - 3, r.y - 3, r.w + 6, r.h + 6);
    }

    // Where the line is now on the live roll.
    if (g.live && state.status.md_m >= g.md0 && state.status.md_m <= g.md1) {
      const y = Math.round(g.y(state.status.md_m)) + 0.5;
      ctx.strokeStyle = '#1f6feb'; ctx.lineWidth = 1; ctx.setLineDash([5, 4]);
      ctx.beginPath(); ctx.moveTo(MARGIN.left, y); ctx.lineTo(MARGIN.left + g.pw, y); ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.restore();

    ctx.strokeStyle = '#c3c8d0'; ctx.lineWidth = 1;
    ctx.strokeRect(MARGIN.left + 0.5, MARGIN.top + 0.5, g.pw - 1, g.ph - 1);

    $('map-count').textContent = state.rollId
      ? `${fmt.int(shown)} of ${fmt.int(state.defects.length)} defects in view · ` +
        `${fmt.num(g.md0, 1)}–${fmt.num(g.md1, 1)} m`
      : '';
  }

  function renderLegend() {
    const ul = $('legend');
    ul.replaceChildren();
    for (const [cls, colour] of state.colours) {
      const li = document.createElement('li');
      li.append(swatch(colour), document.createTextNode(cls || '(none)'));
      ul.append(li);
    }
    const li = document.createElement('li');
    li.append(swatch(null, 'hatch'), document.createTextNode('uninspected'));
    ul.append(li);
  }

  // ---- hover and selection ------------------------------------------------

  function defectAt(px, py) {
    const g = geometry();
    // Last drawn is on top; search backwards, with 2 px of slack.
    for (let i = state.defects.length - 1; i >= 0; i--) {
      const d = state.defects[i];
      if (d.md_end_m < g.md0 || d.md_start_m > g.md1) continue;
      const r = rectOf(d, g);
      if (px >= r.x - 2 && px <= r.x + r.w + 2 && py >= r.y - 2 && py <= r.y + r.h + 2) return d;
    }
    return null;
  }

  function mousePos(ev) {
    const b = canvas.getBoundingClientRect();
    return [ev.clientX - b.left, ev.clientY - b.top];
  }

  canvas.addEventListener('mousemove', (ev) => {
    const [px, py] = mousePos(ev);
    const d = defectAt(px, py);
    if (d !== state.hover) { state.hover = d; state.dirty = true; }
    if (!d) { tip.hidden = true; return; }
    tip.textContent =
      `#${d.defect_id} ${d.class || '(none)'} · ${d.decision}\n` +
      `MD ${fmt.num(d.md_start_m, 3)}–${fmt.num(d.md_end_m, 3)} m · ` +
      `CD ${fmt.num(d.cd_start_mm, 1)}–${fmt.num(d.cd_end_mm, 1)} mm\n` +
      `${fmt.num(d.area_mm2, 1)} mm² · score ${fmt.num(d.peak_score, 2)}`;
    tip.hidden = false;
    const wrap = canvas.parentElement;
    const left = Math.min(px + 14, wrap.clientWidth - tip.offsetWidth - 4);
    const top = py + 14 + tip.offsetHeight > wrap.clientHeight ? py - tip.offsetHeight - 8 : py + 14;
    tip.style.left = Math.max(0, left) + 'px';
    tip.style.top = Math.max(0, top) + 'px';
  });
  canvas.addEventListener('mouseleave', () => {
    tip.hidden = true;
    if (state.hover) { state.hover = null; state.dirty = true; }
  });
  canvas.addEventListener('click', (ev) => {
    const [px, py] = mousePos(ev);
    state.selected = defectAt(px, py);
    renderDetail(state.selected);
    state.dirty = true;
  });

  const DETAIL_FIELDS = [
    ['defect_id', 'ID'], ['class', 'Class'], ['severity', 'Severity'], ['decision', 'Decision'],
    ['md_start_m', 'MD start (m)', 3], ['md_end_m', 'MD end (m)', 3],
    ['cd_start_mm', 'CD start (mm)', 1], ['cd_end_mm', 'CD end (mm)', 1],
    ['area_mm2', 'Area (mm²)', 2], ['peak_score', 'Peak score', 3], ['mean_score', 'Mean score', 3],
    ['contrast', 'Contrast', 1], ['polarity', 'Polarity'], ['detector', 'Detector'],
    ['camera', 'Camera'], ['lane', 'Lane'], ['time', 'Time'], ['encoder_count', 'Encoder count'],
    ['image_ref', 'Image'], ['review_status', 'Review'], ['review_label', 'Review label'],
  ];

  function renderDetail(d) {
    const table = $('detail-table');
    $('detail-empty').hidden = !!d;
    table.hidden = !d;
    const body = table.tBodies[0];
    body.replaceChildren();
    if (!d) return;
    for (const [key, label, digits] of DETAIL_FIELDS) {
      let v = d[key];
      if (digits != null && typeof v === 'number') v = v.toFixed(digits);
      else if (key === 'time' && v) v = new Date(v).toLocaleString();
      else if (key === 'lane' && v === -1) v = 'none';
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      const td = document.createElement('td');
      th.textContent = label;
      td.textContent = v === '' || v == null ? '–' : String(v);
      if (key === 'class') td.prepend(swatch(colourOf(d.class)), ' ');
      tr.append(th, td);
      body.append(tr);
    }
  }

  // ---- controls and loops -------------------------------------------------

  $('roll-select').addEventListener('change', (ev) => {
    const id = ev.target.value;
    state.follow = id === '';
    if (!state.follow) {
      if (state.view !== 'whole') { state.view = 'whole'; $('view-select').value = 'whole'; }
      switchRoll(id);
    } else {
      pollStatus();
    }
  });
  $('view-select').addEventListener('change', (ev) => {
    state.view = ev.target.value;
    state.dirty = true;
  });

  new ResizeObserver(resize).observe(canvas);

  // Redraw when something changed. A timer rather than requestAnimationFrame
  // keeps the map current on a wall screen or in a headless browser, where
  // animation frames may be paused.
  function frame() {
    if (state.dirty) { state.dirty = false; draw(); }
  }

  function every(ms, fn) {
    fn();
    setInterval(fn, ms);
  }

  renderLegend();
  resize();
  pollRollList().then(() => {
    every(1000, pollStatus);
    every(1000, pollDefects);
    every(2000, pollRoll);
    setInterval(pollRollList, 10000);
  });
  setInterval(frame, 200);
})();
