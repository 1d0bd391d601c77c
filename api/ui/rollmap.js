// Roll map: one roll on a canvas, MD across (the long axis), CD down, with
// lanes, uninspected ranges (hatched), splices, the line's position on a
// live roll, and a per-metre density strip under the map.
//
// Two ways to draw, chosen by how many defects the loaded MD range holds
// (the /grid answer's total under the active filters):
//   grid   more than GLYPH_MAX: /api/rolls/{id}/grid bins the range into
//          cells of about CELL_PX pixels; a cell takes its dominant class's
//          colour, more opaque the more defects it holds. Clicking a cell
//          zooms into it.
//   glyph  GLYPH_MAX or fewer: the defects themselves come from
//          /api/rolls/{id}/defects?md_from&md_to and are drawn as glyphs:
//          shape and colour by class, size and outline by severity, and
//          their real extent behind once it is larger than the glyph.
// Either way the loaded range is the view plus half a view on each side, so
// a pan or a zoom redraws at once from what is held and refetches (debounced)
// only when the view leaves the loaded range or the grid cells grow or shrink
// too far. The page so never holds more than a few thousand defects or one
// screen of cells, whatever the roll's length.
//
// View: md0..md1 metres across; CD spans the web's width until the MD zoom
// reaches the same mm per pixel as CD, then both zoom together (1:1), so a
// single defect can fill the view.
'use strict';

(() => {
  const { $, fmt, on } = WI;
  // Plot margins in CSS pixels; the density strip and the MD labels sit in
  // the bottom margin. browser_test.go mirrors these: change both together.
  const MARGIN = { left: 64, top: 10, right: 14, bottom: 62 };
  const STRIP = { gap: 6, h: 36 };
  const GLYPH_MAX = 2000;     // glyphs at or below this many defects in the loaded range
  const PAGE = 10000;         // the defects endpoint's maximum page
  const CELL_PX = 6;          // target grid cell size
  const MIN_MD_SPAN = 0.02;   // m: the deepest zoom
  const GLYPH_R = { minor: 4, major: 5.5, critical: 7 }; // glyph radius by severity, CSS px
  const GLYPH_R_DEFAULT = 4.5;
  const WEB_BG = '#fbfbfc';   // browser_test.go checks empty web against this

  const canvas = $('rollmap');
  const ctx = canvas.getContext('2d');
  const tip = $('tip');

  const M = {
    rollId: '',
    gen: 0,                   // bumped on every roll switch; stale answers are dropped
    roll: null,               // RollInfo + uninspected (+ splices when the server has them)
    summary: null,
    density: null,            // {bin_m, bins}
    splices: [],              // from the feed, for the shown roll
    view: { md0: 0, md1: 1, cdc: null }, // cdc: CD centre when CD is zoomed, null = whole width
    fitted: true,             // the view is the whole roll and follows its growth
    mode: '',                 // '', 'grid', 'glyph'
    grid: null,               // last /grid answer + key, index
    defects: [],              // glyph mode: the loaded range's defects
    loaded: null,             // glyph mode: {md0, md1, key} covered completely
    stale: false,             // new defects arrived outside what is drawn
    filters: { class: '', decision: '', review: '' },
    hover: null,
    hoverCell: null,
    selected: null,
    dirty: true,
    raf: 0,
    fetchTimer: 0,
    staleTimer: 0,
    fetching: false,
    again: false,
    afterFirst: null,         // loads to start once the first map is drawn
    gridMissing: false,
    metaDone: false,          // the shown roll's info (length, width) has been asked for and answered
    perf: { rollAt: null, metaAt: null, gridAt: null, firstDraw: null, clickAt: null, clickToDraw: null, clickToDetail: null, draws: 0, lastDrawMs: 0, maxDrawMs: 0 },
  };
  WI.map = M; // for the browser test and the console

  // ---- data ---------------------------------------------------------------

  function liveStatus() {
    const st = WI.state.status;
    return st && st.roll_id === M.rollId ? st : null;
  }

  function widthMM() {
    const live = liveStatus();
    let w = (M.roll && M.roll.web_width_mm) || (live && live.web_width_mm) || 0;
    if (!(w > 0)) {
      w = 1000;
      for (const d of M.defects) w = Math.max(w, d.cd_end_mm);
    }
    return w;
  }

  function rollLength() {
    const live = liveStatus();
    let L = Math.max((M.roll && M.roll.length_m) || 0, (live && live.md_m) || 0);
    for (const d of M.defects) if (d.md_end_m > L) L = d.md_end_m;
    return Math.max(L, 1);
  }

  function filterKey() {
    const f = M.filters;
    return `${f.class}|${f.decision}|${f.review}`;
  }

  function filterQuery() {
    const f = M.filters;
    let q = '';
    if (f.class) q += '&class=' + encodeURIComponent(f.class);
    if (f.decision) q += '&decision=' + encodeURIComponent(f.decision);
    if (f.review) q += '&review_status=' + encodeURIComponent(f.review);
    return q;
  }

  function passes(d) {
    const f = M.filters;
    if (f.class && d.class !== f.class) return false;
    if (f.decision && d.decision !== f.decision) return false;
    if (f.review === 'none') return !d.review_status;
    if (f.review && d.review_status !== f.review) return false;
    return true;
  }

  function switchRoll(id) {
    M.gen++;
    M.rollId = id;
    M.roll = null;
    M.summary = null;
    M.density = null;
    M.splices = [];
    M.mode = '';
    M.grid = null;
    M.defects = [];
    M.loaded = null;
    M.stale = false;
    M.hover = M.hoverCell = null;
    M.fitted = true;
    M.metaDone = false;
    M.view = { md0: 0, md1: 1, cdc: null };
    select(null);
    $('map-title').textContent = id ? 'Roll ' + id : 'No roll';
    $('roll-name').textContent = id;
    for (const [el, file] of [['report-html', 'report.html'], ['report-pdf', 'report.pdf']]) {
      if (id) $(el).href = WI.rollURL(id) + '/' + file; else $(el).removeAttribute('href');
    }
    renderRollCard();
    requestDraw();
    if (!id) return;
    const gen = M.gen;
    M.perf.rollAt = performance.now();
    // The roll's width and length come first: the view depends on them.
    // Then the map's data; the summary (lanes, grades) and the density
    // strip after it, so that on a large roll they do not slow the first
    // drawing down (the server scans the roll for each).
    M.afterFirst = () => { loadSummary(); loadDensity(); };
    loadRoll().then(() => {
      if (gen !== M.gen) return;
      M.perf.metaAt = performance.now();
      M.metaDone = true;
      fit();
      if (canvas.clientWidth === 0) afterFirst(); // map hidden: no first drawing to wait for
    });
  }

  async function loadRoll() {
    const id = M.rollId, gen = M.gen;
    try {
      const roll = await WI.getJSON(WI.rollURL(id));
      if (gen !== M.gen) return;
      M.roll = roll;
      if (M.fitted) fitView();
      renderRollCard();
      requestDraw();
    } catch (e) {
      if (gen === M.gen) WI.message(`Roll ${id}: ${e.message}`);
    }
  }

  async function loadSummary() {
    const id = M.rollId, gen = M.gen;
    try {
      const sum = await WI.getJSON(WI.rollURL(id) + '/summary');
      if (gen !== M.gen) return;
      M.summary = sum;
      WI.seedClasses(Object.keys(sum.by_class || {}));
      renderFilters();
      renderRollCard();
      requestDraw();
    } catch (_) { /* a store without summaries: no lanes, no grades */ }
  }

  async function loadDensity() {
    const id = M.rollId, gen = M.gen;
    const L = rollLength();
    // Per metre, or coarser so a long roll stays below ~4000 bins.
    const binM = Math.max(1, niceStep(L, 4000));
    try {
      const d = await WI.getJSON(`${WI.rollURL(id)}/density?bin_m=${binM}`);
      if (gen !== M.gen) return;
      M.density = d;
      requestDraw();
    } catch (_) { /* no strip */ }
  }

  // need says whether the view holds more than the loaded data covers.
  // Nothing is loaded before the roll's info has answered: until then the
  // view is a placeholder (0..1 m), and a load for it would draw a metre
  // of a long roll as glyphs first, however briefly.
  function need() {
    if (!M.rollId || !M.metaDone || canvas.clientWidth === 0) return false;
    if (M.stale) return true;
    const g = geometry();
    const key = filterKey();
    if (M.mode === 'glyph' && M.loaded && M.loaded.key === key) {
      return !(M.loaded.md0 <= g.md0 && M.loaded.md1 >= g.md1);
    }
    if (M.mode === 'grid' && M.grid && M.grid.key === key) {
      const cellPx = ((M.grid.md_to - M.grid.md_from) / M.grid.md_bins) / (g.md1 - g.md0) * g.pw;
      const covers = M.grid.md_from <= g.md0 && M.grid.md_to >= g.md1;
      return !(covers && cellPx >= CELL_PX / 2.5 && cellPx <= CELL_PX * 2.5);
    }
    return true;
  }

  // schedule asks for a load within delay ms. A load already due sooner
  // is kept (it reads the view when it runs), so a stream of requests,
  // such as live status events more often than the delay, cannot put the
  // load off for ever.
  function schedule(delay) {
    const due = performance.now() + delay;
    if (M.fetchTimer && M.fetchDue <= due) return;
    clearTimeout(M.fetchTimer);
    M.fetchDue = due;
    M.fetchTimer = setTimeout(() => { M.fetchTimer = 0; load(); }, delay);
  }

  function markStale() {
    M.stale = true;
    if (!M.staleTimer) M.staleTimer = setTimeout(() => { M.staleTimer = 0; schedule(0); }, 2000);
  }

  async function fetchDefects(id, f0, f1, fq, max) {
    const out = [];
    let after = 0;
    for (;;) {
      const page = await WI.getJSON(`${WI.rollURL(id)}/defects?md_from=${f0}&md_to=${f1}&after=${after}&limit=${PAGE}${fq}`);
      out.push(...page.defects);
      if (page.defects.length < PAGE || out.length >= max) return out;
      after = page.next_after;
    }
  }

  async function load() {
    if (M.fetching) { M.again = true; return; }
    if (!need()) return;
    M.fetching = true;
    M.stale = false;
    const id = M.rollId, gen = M.gen;
    const g = geometry();
    const key = filterKey();
    const fq = filterQuery();
    const span = g.md1 - g.md0;
    // Half a view either side, but not past the end of a roll that no
    // longer grows.
    const end = liveStatus() ? Infinity : Math.max(rollLength(), g.md1);
    const f0 = Math.max(0, g.md0 - span / 2), f1 = Math.min(g.md1 + span / 2, end);
    const mdBins = clampInt(Math.round(g.pw * ((f1 - f0) / span) / CELL_PX), 1, 2000);
    const cdBins = clampInt(Math.round((g.ph * (g.W / (g.cd1 - g.cd0))) / CELL_PX), 1, 200);
    try {
      let grid = null;
      if (!M.gridMissing) {
        try {
          grid = await WI.getJSON(`${WI.rollURL(id)}/grid?md_from=${f0}&md_to=${f1}&md_bins=${mdBins}&cd_bins=${cdBins}${fq}`);
        } catch (e) {
          if (gen !== M.gen) return;
          if (e.status === 404 || e.status === 405 || e.status === 501) {
            // A server without the grid: draw up to one page of defects.
            M.gridMissing = true;
          } else {
            throw e;
          }
        }
      }
      if (gen !== M.gen) return;
      if (M.perf.gridAt == null) M.perf.gridAt = performance.now();
      if (grid && grid.total > GLYPH_MAX) {
        const index = new Map(), names = new Set();
        let max = 0;
        for (const c of grid.cells) {
          index.set(c.md * grid.cd_bins + c.cd, c);
          if (c.count > max) max = c.count;
          names.add(c.class);
        }
        WI.seedClasses(names); // in name order, as the summary's classes
        M.grid = Object.assign(grid, { key, index, max });
        M.mode = 'grid';
        M.defects = [];
        M.loaded = null;
      } else {
        const ds = await fetchDefects(id, f0, f1, fq, grid ? GLYPH_MAX * 2 : PAGE);
        if (gen !== M.gen) return;
        WI.seedClasses(new Set(ds.map((d) => d.class)));
        M.defects = ds;
        M.loaded = { md0: f0, md1: f1, key };
        M.mode = 'glyph';
        M.grid = null;
        if (!grid && ds.length >= PAGE) WI.message(`This server has no /grid: showing the first ${fmt.int(ds.length)} defects of the view only.`);
        if (M.selected) {
          const fresh = ds.find((d) => d.defect_id === M.selected.defect_id);
          if (fresh) M.selected = fresh;
        }
      }
      M.fetching = false;
      draw();
    } catch (e) {
      if (gen === M.gen) WI.message(`Roll map of ${id}: ${e.message}`);
    } finally {
      M.fetching = false;
    }
    afterFirst();
    if (M.again) { M.again = false; schedule(0); } else if (need()) schedule(100);
  }

  function afterFirst() {
    const f = M.afterFirst;
    M.afterFirst = null;
    if (f) { f(); WI.emit('mapready', { id: M.rollId }); }
  }

  // ---- view ---------------------------------------------------------------

  function geometry() {
    const w = canvas.clientWidth, h = canvas.clientHeight;
    const pw = Math.max(10, w - MARGIN.left - MARGIN.right);
    const ph = Math.max(10, h - MARGIN.top - MARGIN.bottom);
    const W = widthMM();
    const { md0, md1 } = M.view;
    const cdSpan = Math.min(W, ((md1 - md0) * 1000 * ph) / pw);
    let cd0 = 0;
    if (cdSpan < W) {
      const c = M.view.cdc == null ? W / 2 : M.view.cdc;
      cd0 = Math.min(Math.max(c - cdSpan / 2, 0), W - cdSpan);
    }
    const cd1 = cd0 + cdSpan;
    return {
      w, h, pw, ph, W, md0, md1, cd0, cd1,
      x: (md) => MARGIN.left + ((md - md0) / (md1 - md0)) * pw,
      y: (cd) => MARGIN.top + ((cd - cd0) / (cd1 - cd0)) * ph,
      md: (x) => md0 + ((x - MARGIN.left) / pw) * (md1 - md0),
      cd: (y) => cd0 + ((y - MARGIN.top) / ph) * (cd1 - cd0),
      stripTop: MARGIN.top + ph + STRIP.gap,
    };
  }

  function fitView() {
    M.view = { md0: 0, md1: rollLength(), cdc: null };
  }

  function fit() {
    M.fitted = true;
    fitView();
    requestDraw();
    schedule(0);
  }

  function setView(md0, md1, cdc) {
    const L = rollLength();
    const span = Math.min(Math.max(md1 - md0, MIN_MD_SPAN), L);
    const end = Math.max(L, span);
    md0 = Math.min(Math.max(md0, 0), end - span);
    M.view = { md0, md1: md0 + span, cdc };
    M.fitted = md0 <= 0 && span >= L;
    if (M.fitted) M.view.cdc = null;
    requestDraw();
    schedule(120);
  }

  function zoomAt(md, cd, factor) {
    const g = geometry();
    const span = (g.md1 - g.md0) * factor;
    const fx = (md - g.md0) / (g.md1 - g.md0);
    const md0 = md - fx * span;
    const cdSpan = Math.min(g.W, (span * 1000 * g.ph) / g.pw);
    const fy = (cd - g.cd0) / (g.cd1 - g.cd0);
    const cd0 = cd - fy * cdSpan;
    setView(md0, md0 + span, cd0 + cdSpan / 2);
  }

  function centreOn(md, cd, span) {
    setView(md - span / 2, md + span / 2, cd);
  }

  // ---- drawing ------------------------------------------------------------

  function requestDraw() {
    M.dirty = true;
    if (M.raf) return;
    M.raf = requestAnimationFrame(() => { M.raf = 0; if (M.dirty) draw(); });
  }

  let hatch = null;
  function hatchPattern() {
    if (hatch) return hatch;
    const c = document.createElement('canvas');
    c.width = c.height = 8;
    const h = c.getContext('2d');
    h.fillStyle = 'rgba(198,40,40,0.15)';
    h.fillRect(0, 0, 8, 8);
    h.strokeStyle = 'rgba(198,40,40,0.75)';
    h.lineWidth = 1.5;
    h.beginPath();
    h.moveTo(-2, 10); h.lineTo(10, -2);
    h.moveTo(-2, 2); h.lineTo(2, -2);
    h.moveTo(6, 10); h.lineTo(10, 6);
    h.stroke();
    hatch = ctx.createPattern(c, 'repeat');
    return hatch;
  }

  // Fit the bitmap to the canvas's CSS size and redraw at once: setting
  // canvas.width clears it, and a ResizeObserver callback runs after layout
  // but before paint, so drawing here puts the new map in the same frame
  // (a headless --screenshot grows the viewport just before it captures).
  function resize() {
    const dpr = window.devicePixelRatio || 1;
    const bw = Math.round(canvas.clientWidth * dpr), bh = Math.round(canvas.clientHeight * dpr);
    if (canvas.width !== bw || canvas.height !== bh) {
      canvas.width = bw;
      canvas.height = bh;
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    draw();
    if (need()) schedule(50);
  }

  function niceStep(span, n) {
    const raw = span / Math.max(1, n);
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }

  function clampInt(v, lo, hi) { return Math.min(hi, Math.max(lo, v | 0)); }

  function glyphRadius(d) { return GLYPH_R[d.severity] || GLYPH_R_DEFAULT; }

  // glyphPath traces a class's shape of radius r around (x, y).
  function glyphPath(shape, x, y, r) {
    ctx.beginPath();
    const poly = (n, rot, rr) => {
      for (let i = 0; i < n; i++) {
        const a = rot + (i * 2 * Math.PI) / n;
        const px = x + (rr || r) * Math.cos(a), py = y + (rr || r) * Math.sin(a);
        if (i) ctx.lineTo(px, py); else ctx.moveTo(px, py);
      }
      ctx.closePath();
    };
    switch (shape) {
      case 'square': ctx.rect(x - r * 0.85, y - r * 0.85, r * 1.7, r * 1.7); break;
      case 'triangle': poly(3, -Math.PI / 2, r * 1.15); break;
      case 'triangle-down': poly(3, Math.PI / 2, r * 1.15); break;
      case 'diamond': poly(4, 0, r * 1.1); break;
      case 'hexagon': poly(6, 0); break;
      case 'star': {
        for (let i = 0; i < 10; i++) {
          const a = -Math.PI / 2 + (i * Math.PI) / 5, rr = i % 2 ? r * 0.5 : r * 1.2;
          const px = x + rr * Math.cos(a), py = y + rr * Math.sin(a);
          if (i) ctx.lineTo(px, py); else ctx.moveTo(px, py);
        }
        ctx.closePath();
        break;
      }
      case 'plus': {
        const t = r * 0.4;
        ctx.moveTo(x - t, y - r); ctx.lineTo(x + t, y - r); ctx.lineTo(x + t, y - t); ctx.lineTo(x + r, y - t);
        ctx.lineTo(x + r, y + t); ctx.lineTo(x + t, y + t); ctx.lineTo(x + t, y + r); ctx.lineTo(x - t, y + r);
        ctx.lineTo(x - t, y + t); ctx.lineTo(x - r, y + t); ctx.lineTo(x - r, y - t); ctx.lineTo(x - t, y - t);
        ctx.closePath();
        break;
      }
      default: ctx.arc(x, y, r, 0, 2 * Math.PI);
    }
  }

  // Screen box of a defect: its extent, at least its glyph.
  function boxOf(d, g) {
    const x0 = g.x(d.md_start_m), x1 = g.x(d.md_end_m);
    const y0 = g.y(d.cd_start_mm), y1 = g.y(d.cd_end_mm);
    return { x0, x1, y0, y1, cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, r: glyphRadius(d) };
  }

  function draw() {
    M.dirty = false;
    if (canvas.clientWidth === 0) return;
    const t0 = performance.now();
    const g = geometry();
    ctx.clearRect(0, 0, g.w, g.h);
    ctx.font = '11px system-ui, sans-serif';
    const right = MARGIN.left + g.pw, bottom = MARGIN.top + g.ph;

    // Web area and grid lines with CD labels (left) and MD labels (under the strip).
    ctx.fillStyle = WEB_BG;
    ctx.fillRect(MARGIN.left, MARGIN.top, g.pw, g.ph);
    ctx.strokeStyle = '#e6e8ec';
    ctx.fillStyle = '#667085';
    ctx.lineWidth = 1;
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    const cdStep = niceStep(g.cd1 - g.cd0, g.ph / 50);
    for (let c = Math.ceil(g.cd0 / cdStep) * cdStep; c <= g.cd1 + 1e-9; c += cdStep) {
      const y = Math.round(g.y(c)) + 0.5;
      ctx.beginPath(); ctx.moveTo(MARGIN.left, y); ctx.lineTo(right, y); ctx.stroke();
      ctx.fillText(`${+c.toFixed(1)}`, MARGIN.left - 6, y);
    }
    ctx.save();
    ctx.translate(12, MARGIN.top + g.ph / 2); ctx.rotate(-Math.PI / 2);
    ctx.textAlign = 'center'; ctx.fillText('CD mm', 0, 0);
    ctx.restore();
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    const mdStep = niceStep(g.md1 - g.md0, g.pw / 90);
    const labelY = g.stripTop + STRIP.h + 4;
    for (let m = Math.ceil(g.md0 / mdStep) * mdStep; m <= g.md1 + 1e-9; m += mdStep) {
      const x = Math.round(g.x(m)) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, MARGIN.top); ctx.lineTo(x, bottom); ctx.stroke();
      const label = `${+m.toFixed(3)} m`, half = ctx.measureText(label).width / 2;
      ctx.fillText(label, Math.min(x, g.w - half - 1), labelY); // the last one stays on the canvas
    }

    ctx.save();
    ctx.beginPath();
    ctx.rect(MARGIN.left, MARGIN.top, g.pw, g.ph);
    ctx.clip();

    drawLanes(g);
    drawUninspected(g);
    let shown = 0;
    if (M.mode === 'grid') shown = drawGrid(g);
    else if (M.mode === 'glyph') shown = drawGlyphs(g);
    drawSplices(g);
    drawLaneLabels(g);

    // Where the line is now on the live roll.
    const live = liveStatus();
    if (live && live.md_m >= g.md0 && live.md_m <= g.md1) {
      const x = Math.round(g.x(live.md_m)) + 0.5;
      ctx.strokeStyle = '#1f6feb'; ctx.lineWidth = 1; ctx.setLineDash([5, 4]);
      ctx.beginPath(); ctx.moveTo(x, MARGIN.top); ctx.lineTo(x, bottom); ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.restore();

    ctx.strokeStyle = '#c3c8d0'; ctx.lineWidth = 1;
    ctx.strokeRect(MARGIN.left + 0.5, MARGIN.top + 0.5, g.pw - 1, g.ph - 1);
    drawStrip(g);

    const total = Math.max((M.roll && M.roll.defects) || 0, (live && live.defects) || 0);
    const filtered = M.filters.class || M.filters.decision || M.filters.review;
    $('map-count').textContent = M.rollId
      ? `${fmt.int(shown)} of ${fmt.int(total)} defects in view${filtered ? ' (filtered)' : ''} · ` +
        `${fmt.num(g.md0, g.md1 - g.md0 < 10 ? 2 : 1)}–${fmt.num(g.md1, g.md1 - g.md0 < 10 ? 2 : 1)} m` +
        (M.mode === 'grid' ? ' · density cells' : '')
      : '';

    const now = performance.now();
    M.perf.draws++;
    M.perf.lastDrawMs = now - t0;
    if (M.mode && M.perf.lastDrawMs > M.perf.maxDrawMs) M.perf.maxDrawMs = M.perf.lastDrawMs;
    if (M.mode && M.perf.firstDraw == null) M.perf.firstDraw = now;
    if (M.perf.clickAt != null && M.mode && !M.fetching && !need()) {
      M.perf.clickToDraw = now - M.perf.clickAt;
      M.perf.clickAt = null;
    }
  }

  // Lane boundaries go under the defects, their labels over them (a
  // glyph must not hide which lane it is in).
  function drawLanes(g) {
    const lanes = (M.summary && M.summary.lanes) || [];
    if (!lanes.length) return;
    ctx.strokeStyle = '#8a94a6'; ctx.lineWidth = 1; ctx.setLineDash([6, 3]);
    lanes.forEach((l, i) => {
      for (const cd of i === 0 ? [l.cd_start_mm, l.cd_end_mm] : [l.cd_end_mm]) {
        const y = Math.round(g.y(cd)) + 0.5;
        ctx.beginPath(); ctx.moveTo(MARGIN.left, y); ctx.lineTo(MARGIN.left + g.pw, y); ctx.stroke();
      }
    });
    ctx.setLineDash([]);
  }

  function drawLaneLabels(g) {
    const lanes = (M.summary && M.summary.lanes) || [];
    const grades = new Map(((M.summary && M.summary.grades) || []).map((gr) => [gr.lane, gr]));
    ctx.textAlign = 'left'; ctx.textBaseline = 'top';
    M.laneLabels = [];
    lanes.forEach((l, i) => {
      const gr = grades.get(i);
      const label = WI.laneLabel(l, i) + (gr ? ` · ${gr.grade}` : '');
      const y = Math.max(MARGIN.top, g.y(l.cd_start_mm)) + 2;
      if (y > MARGIN.top + g.ph - 12) return; // lane scrolled out of view
      const w = ctx.measureText(label).width + 6;
      ctx.fillStyle = 'rgba(255,255,255,0.9)';
      ctx.fillRect(MARGIN.left + 2, y - 1, w, 14);
      ctx.strokeStyle = '#c3c8d0'; ctx.lineWidth = 1;
      ctx.strokeRect(MARGIN.left + 2.5, y - 0.5, w - 1, 13);
      ctx.fillStyle = '#475467';
      ctx.fillText(label, MARGIN.left + 5, y);
      M.laneLabels.push({ name: WI.laneLabel(l, i), label, x: MARGIN.left + 2, y: y - 1, w, h: 14 });
    });
  }

  function drawUninspected(g) {
    const us = (M.roll && M.roll.uninspected) || [];
    ctx.fillStyle = hatchPattern();
    for (const u of us) {
      if (u.md_end_m < g.md0 || u.md_start_m > g.md1) continue;
      const full = !(u.cd_end_mm > u.cd_start_mm);
      const y0 = full ? MARGIN.top : g.y(u.cd_start_mm);
      const y1 = full ? MARGIN.top + g.ph : g.y(u.cd_end_mm);
      const x0 = g.x(u.md_start_m);
      ctx.fillRect(x0, y0, Math.max(2, g.x(u.md_end_m) - x0), y1 - y0);
    }
  }

  function splices() {
    const fromRoll = (M.roll && M.roll.splices) || [];
    return fromRoll.concat(M.splices);
  }

  function drawSplices(g) {
    ctx.strokeStyle = '#7b3fa0'; ctx.fillStyle = '#7b3fa0'; ctx.lineWidth = 2; ctx.setLineDash([2, 3]);
    ctx.textAlign = 'left'; ctx.textBaseline = 'top';
    for (const s of splices()) {
      if (!(s.md_m >= g.md0 && s.md_m <= g.md1)) continue;
      const x = Math.round(g.x(s.md_m));
      ctx.beginPath(); ctx.moveTo(x, MARGIN.top); ctx.lineTo(x, MARGIN.top + g.ph); ctx.stroke();
      ctx.fillText('splice' + (s.note ? ': ' + s.note : ''), x + 4, MARGIN.top + 3);
    }
    ctx.setLineDash([]);
  }

  function drawGrid(g) {
    const gr = M.grid;
    const binMD = (gr.md_to - gr.md_from) / gr.md_bins, binCD = g.W / gr.cd_bins;
    const logMax = Math.log1p(gr.max || 1);
    let shown = 0;
    for (const c of gr.cells) {
      const m0 = gr.md_from + c.md * binMD, m1 = m0 + binMD;
      if (m1 < g.md0 || m0 > g.md1) continue;
      const c0 = c.cd * binCD, c1 = c0 + binCD;
      if (c1 < g.cd0 || c0 > g.cd1) continue;
      shown += c.count;
      const x0 = g.x(m0), y0 = g.y(c0);
      ctx.globalAlpha = 0.3 + 0.7 * (Math.log1p(c.count) / logMax);
      ctx.fillStyle = WI.colourOf(c.class);
      ctx.fillRect(x0, y0, Math.max(1, g.x(m1) - x0), Math.max(1, g.y(c1) - y0));
    }
    ctx.globalAlpha = 1;
    const h = M.hoverCell;
    if (h) {
      const m0 = gr.md_from + h.md * binMD;
      ctx.strokeStyle = '#1f6feb'; ctx.lineWidth = 2;
      ctx.strokeRect(g.x(m0) - 1, g.y(h.cd * binCD) - 1, g.x(m0 + binMD) - g.x(m0) + 2, g.y((h.cd + 1) * binCD) - g.y(h.cd * binCD) + 2);
    }
    return shown;
  }

  function drawGlyphs(g) {
    let shown = 0;
    const inView = [];
    for (const d of M.defects) {
      if (d.md_end_m < g.md0 || d.md_start_m > g.md1 || d.cd_end_mm < g.cd0 || d.cd_start_mm > g.cd1) continue;
      if (!passes(d)) continue;
      inView.push(d);
    }
    shown = inView.length;
    // Extents behind, where they are larger than the glyph.
    for (const d of inView) {
      const b = boxOf(d, g);
      if (b.x1 - b.x0 > 2 * b.r && b.y1 - b.y0 > 2 * b.r) {
        const st = WI.classStyle(d.class);
        ctx.globalAlpha = 0.22;
        ctx.fillStyle = st.colour;
        ctx.fillRect(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0);
        ctx.globalAlpha = 1;
        ctx.strokeStyle = st.colour; ctx.lineWidth = 1;
        ctx.strokeRect(b.x0 + 0.5, b.y0 + 0.5, b.x1 - b.x0 - 1, b.y1 - b.y0 - 1);
      }
    }
    // Glyphs: minor first, critical last (on top).
    const order = { minor: 0, major: 1, critical: 2 };
    inView.sort((a, b) => (order[a.severity] || 0) - (order[b.severity] || 0));
    for (const d of inView) {
      const b = boxOf(d, g);
      const st = WI.classStyle(d.class);
      glyphPath(st.shape, b.cx, b.cy, b.r);
      ctx.globalAlpha = d.review_status === 'false_alarm' ? 0.35 : 1;
      ctx.fillStyle = st.colour;
      ctx.fill();
      ctx.globalAlpha = 1;
      if (d.severity === 'critical' || d.severity === 'major') {
        ctx.strokeStyle = '#1d2430';
        ctx.lineWidth = d.severity === 'critical' ? 2 : 1;
        ctx.stroke();
      }
    }
    for (const [d, style] of [[M.selected, '#1d2430'], [M.hover, '#1f6feb']]) {
      if (!d || d.roll_id && d.roll_id !== M.rollId) continue;
      const b = boxOf(d, g);
      const x0 = Math.min(b.x0, b.cx - b.r), x1 = Math.max(b.x1, b.cx + b.r);
      const y0 = Math.min(b.y0, b.cy - b.r), y1 = Math.max(b.y1, b.cy + b.r);
      ctx.strokeStyle = style; ctx.lineWidth = 2;
      ctx.strokeRect(x0 - 4, y0 - 4, x1 - x0 + 8, y1 - y0 + 8);
    }
    return shown;
  }

  // The density strip: defects per metre under the map, one bar per 2 px
  // column (the column's worst bin); bins with uninspected metres are red.
  function drawStrip(g) {
    const top = g.stripTop, h = STRIP.h;
    ctx.fillStyle = '#f1f3f6';
    ctx.fillRect(MARGIN.left, top, g.pw, h);
    ctx.fillStyle = '#667085'; ctx.textAlign = 'right'; ctx.textBaseline = 'top';
    ctx.fillText('defects', MARGIN.left - 6, top);
    const d = M.density;
    if (!d || !d.bins || !d.bins.length) return;
    const cols = Math.ceil(g.pw / 2);
    const counts = new Float64Array(cols), lost = new Uint8Array(cols);
    for (const b of d.bins) {
      if (b.md_end_m < g.md0 || b.md_start_m > g.md1) continue;
      const perM = b.defects / Math.max(1e-9, b.md_end_m - b.md_start_m);
      const c0 = Math.max(0, Math.floor((g.x(b.md_start_m) - MARGIN.left) / 2));
      const c1 = Math.min(cols - 1, Math.floor((g.x(b.md_end_m) - MARGIN.left - 1e-6) / 2));
      for (let c = c0; c <= c1; c++) {
        if (perM > counts[c]) counts[c] = perM;
      }
    }
    // Uninspected: the ranges' own extent, as the map hatches them (a
    // bin's flag would hatch the whole bin around a gap that starts
    // mid-bin); the bins' flags only while the ranges are not loaded.
    const us = M.roll && M.roll.uninspected;
    if (us) {
      for (const u of us) {
        if (u.md_end_m < g.md0 || u.md_start_m > g.md1) continue;
        const c0 = Math.max(0, Math.floor((g.x(u.md_start_m) - MARGIN.left) / 2));
        const c1 = Math.min(cols - 1, Math.floor((Math.max(g.x(u.md_end_m), g.x(u.md_start_m) + 2) - MARGIN.left - 1e-6) / 2));
        for (let c = c0; c <= c1; c++) lost[c] = 1;
      }
    } else {
      for (const b of d.bins) {
        if (!(b.uninspected_m > 0) || b.md_end_m < g.md0 || b.md_start_m > g.md1) continue;
        const c0 = Math.max(0, Math.floor((g.x(b.md_start_m) - MARGIN.left) / 2));
        const c1 = Math.min(cols - 1, Math.floor((g.x(b.md_end_m) - MARGIN.left - 1e-6) / 2));
        for (let c = c0; c <= c1; c++) lost[c] = 1;
      }
    }
    let max = 0;
    for (const v of counts) if (v > max) max = v;
    for (let c = 0; c < cols; c++) {
      const x = MARGIN.left + c * 2;
      if (lost[c]) { ctx.fillStyle = hatchPattern(); ctx.fillRect(x, top, 2, h); }
      if (counts[c] > 0 && max > 0) {
        const bh = Math.max(1, (counts[c] / max) * (h - 2));
        ctx.fillStyle = '#6b7a99';
        ctx.fillRect(x, top + h - bh, 2, bh);
      }
    }
    // The scale: the tallest bar's defects per metre.
    ctx.fillStyle = '#667085'; ctx.textAlign = 'right'; ctx.textBaseline = 'top';
    ctx.fillText(`max ${+max.toFixed(max < 10 ? 1 : 0)}/m`, MARGIN.left - 6, top + 13);
  }

  // ---- legend, filters, roll card -----------------------------------------

  function renderLegend() {
    const ul = $('legend');
    ul.replaceChildren();
    for (const cls of [...WI.classes.keys()].sort()) {
      const li = document.createElement('li');
      li.append(WI.swatch(cls), document.createTextNode(cls || '(none)'));
      ul.append(li);
    }
    const add = (extra, text) => {
      const li = document.createElement('li');
      li.className = 'aux';
      li.append(WI.swatch(null, extra), document.createTextNode(text));
      ul.append(li);
    };
    add('hatch', 'uninspected');
    add('splice', 'splice');
    add('sev', 'size/outline: severity');
  }

  function renderFilters() {
    const sel = $('f-class');
    const keep = sel.value;
    const names = new Set([...WI.classes.keys()].filter((c) => c !== ''));
    if (M.summary && M.summary.by_class) for (const c of Object.keys(M.summary.by_class)) names.add(c);
    sel.replaceChildren(new Option('all', ''));
    for (const c of [...names].sort()) sel.append(new Option(c, c));
    sel.value = keep;
  }

  function renderRollCard() {
    const dl = $('roll-summary');
    dl.replaceChildren();
    const r = M.roll, s = M.summary;
    const row = (k, v, bad) => {
      const dt = document.createElement('dt'), dd = document.createElement('dd');
      dt.textContent = k; dd.textContent = v;
      if (bad) dd.className = 'bad';
      dl.append(dt, dd);
    };
    if (r) {
      row('Recipe', r.recipe || '–');
      row('Material', r.material || '–');
      row('Length', fmt.num(r.length_m, 1) + ' m');
      row('Width', fmt.num(r.web_width_mm, 0) + ' mm');
      row('Defects', fmt.int(r.defects));
      row('Uninspected', fmt.num(r.uninspected_m, 2) + ' m', r.uninspected_m > 0);
      row('State', r.open ? 'open' : 'closed ' + fmt.time(r.ended));
      // The production context (set at roll start or later), and who set it last.
      const c = r.context || {};
      for (const [k, label] of [['product', 'Product'], ['lot', 'Lot'], ['supplier', 'Supplier'],
        ['shift', 'Shift'], ['operator', 'Operator'], ['order', 'Order']]) {
        if (c[k]) row(label, c[k]);
      }
      const h = r.context_history || [];
      if (h.length) row('Context set', `${fmt.time(h[h.length - 1].time)} by ${h[h.length - 1].by || '–'}`);
    }
    if (s && s.by_decision) {
      row('Decisions', Object.keys(s.by_decision).sort().map((k) => `${k} ${s.by_decision[k]}`).join(' · ') || '–');
    }
    const grades = (s && s.grades) || [];
    const table = $('roll-grades');
    table.hidden = !grades.length;
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const gr of grades) {
      const tr = document.createElement('tr');
      for (const v of [WI.laneLabel(gr, gr.lane), gr.grade + (gr.pass ? '' : ' ✗'), `${fmt.num(gr.density, 2)} ${gr.unit}`]) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.append(td);
      }
      if (!gr.pass) tr.className = 'bad';
      body.append(tr);
    }
    if (s && s.grading_error) {
      const tr = document.createElement('tr');
      const td = document.createElement('td');
      td.colSpan = 3; td.className = 'error'; td.textContent = 'grading: ' + s.grading_error;
      tr.append(td); body.append(tr); table.hidden = false;
    }
  }

  // ---- hover, click, zoom, pan --------------------------------------------

  function defectAt(px, py) {
    if (M.mode !== 'glyph') return null;
    const g = geometry();
    let best = null, bestD = Infinity;
    for (const d of M.defects) {
      if (d.md_end_m < g.md0 || d.md_start_m > g.md1 || !passes(d)) continue;
      const b = boxOf(d, g);
      const x0 = Math.min(b.x0, b.cx - b.r) - 3, x1 = Math.max(b.x1, b.cx + b.r) + 3;
      const y0 = Math.min(b.y0, b.cy - b.r) - 3, y1 = Math.max(b.y1, b.cy + b.r) + 3;
      if (px < x0 || px > x1 || py < y0 || py > y1) continue;
      const dist = (px - b.cx) ** 2 + (py - b.cy) ** 2;
      if (dist < bestD) { bestD = dist; best = d; }
    }
    return best;
  }

  function cellAt(px, py) {
    if (M.mode !== 'grid' || !M.grid) return null;
    const g = geometry(), gr = M.grid;
    const i = Math.floor((g.md(px) - gr.md_from) / ((gr.md_to - gr.md_from) / gr.md_bins));
    const j = Math.floor(g.cd(py) / (g.W / gr.cd_bins));
    if (i < 0 || i >= gr.md_bins || j < 0 || j >= gr.cd_bins) return null;
    return gr.index.get(i * gr.cd_bins + j) || null;
  }

  function inPlot(px, py) {
    const g = geometry();
    return px >= MARGIN.left && px <= MARGIN.left + g.pw && py >= MARGIN.top && py <= MARGIN.top + g.ph;
  }

  function mousePos(ev) {
    const b = canvas.getBoundingClientRect();
    return [ev.clientX - b.left, ev.clientY - b.top];
  }

  function showTip(px, py, text) {
    if (!text) { tip.hidden = true; return; }
    tip.textContent = text;
    tip.hidden = false;
    const wrap = canvas.parentElement;
    const left = Math.min(px + 14, wrap.clientWidth - tip.offsetWidth - 4);
    const top = py + 14 + tip.offsetHeight > wrap.clientHeight ? py - tip.offsetHeight - 8 : py + 14;
    tip.style.left = Math.max(0, left) + 'px';
    tip.style.top = Math.max(0, top) + 'px';
  }

  let drag = null, dragMoved = false;

  canvas.addEventListener('pointerdown', (ev) => {
    if (ev.button !== 0) return;
    const [px, py] = mousePos(ev);
    if (!inPlot(px, py)) return;
    const g = geometry();
    drag = { x: ev.clientX, y: ev.clientY, g, id: ev.pointerId };
    dragMoved = false;
  });
  window.addEventListener('pointermove', (ev) => {
    if (drag) {
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (!dragMoved && Math.abs(dx) + Math.abs(dy) > 4) {
        dragMoved = true;
        canvas.classList.add('dragging');
        tip.hidden = true;
      }
      if (dragMoved) {
        const g = drag.g;
        const dmd = (-dx / g.pw) * (g.md1 - g.md0), dcd = (-dy / g.ph) * (g.cd1 - g.cd0);
        const cdSpan = g.cd1 - g.cd0;
        setView(g.md0 + dmd, g.md1 + dmd, cdSpan < g.W ? g.cd0 + dcd + cdSpan / 2 : null);
        return;
      }
    }
    if (ev.target !== canvas) return;
    const [px, py] = mousePos(ev);
    if (M.mode === 'glyph') {
      const d = defectAt(px, py);
      if (d !== M.hover) { M.hover = d; requestDraw(); }
      showTip(px, py, d &&
        `#${d.defect_id} ${d.class || '(none)'} · ${d.severity} · ${d.decision}` +
        (d.review_status ? ` · ${d.review_status}` : '') + '\n' +
        `MD ${fmt.num(d.md_start_m, 3)}–${fmt.num(d.md_end_m, 3)} m · ` +
        `CD ${fmt.num(d.cd_start_mm, 1)}–${fmt.num(d.cd_end_mm, 1)} mm\n` +
        `${fmt.num(d.area_mm2, 1)} mm² · score ${fmt.num(d.peak_score, 2)}`);
      canvas.style.cursor = d ? 'pointer' : '';
    } else {
      const c = inPlot(px, py) ? cellAt(px, py) : null;
      if (c !== M.hoverCell) { M.hoverCell = c; requestDraw(); }
      if (c) {
        const gr = M.grid, binMD = (gr.md_to - gr.md_from) / gr.md_bins, binCD = geometry().W / gr.cd_bins;
        const m0 = gr.md_from + c.md * binMD;
        showTip(px, py, `${fmt.int(c.count)} defect${c.count === 1 ? '' : 's'}, mostly ${c.class || '(none)'}` +
          (c.severity ? `, worst ${c.severity}` : '') + '\n' +
          `MD ${fmt.num(m0, 1)}–${fmt.num(m0 + binMD, 1)} m · CD ${fmt.num(c.cd * binCD, 0)}–${fmt.num((c.cd + 1) * binCD, 0)} mm\n` +
          'click to zoom in');
      } else {
        showTip(0, 0, '');
      }
      canvas.style.cursor = c ? 'zoom-in' : '';
    }
  });
  window.addEventListener('pointerup', () => {
    if (drag) canvas.classList.remove('dragging');
    drag = null;
  });
  canvas.addEventListener('mouseleave', () => {
    tip.hidden = true;
    if (M.hover || M.hoverCell) { M.hover = M.hoverCell = null; requestDraw(); }
  });
  canvas.addEventListener('click', (ev) => {
    if (dragMoved) { dragMoved = false; return; }
    const [px, py] = mousePos(ev);
    if (!inPlot(px, py)) return;
    const t = performance.now();
    if (M.mode === 'grid') {
      const c = cellAt(px, py);
      if (!c) return;
      const gr = M.grid, g = geometry();
      const binMD = (gr.md_to - gr.md_from) / gr.md_bins, binCD = g.W / gr.cd_bins;
      M.perf.clickAt = t;
      M.perf.clickToDraw = null;
      centreOn(gr.md_from + (c.md + 0.5) * binMD, (c.cd + 0.5) * binCD, Math.max((g.md1 - g.md0) / 8, binMD * 3));
      schedule(0);
      return;
    }
    const d = defectAt(px, py);
    select(d);
    if (d) M.perf.clickToDetail = performance.now() - t;
  });
  canvas.addEventListener('wheel', (ev) => {
    const [px, py] = mousePos(ev);
    if (!inPlot(px, py)) return;
    ev.preventDefault();
    const g = geometry();
    const dy = ev.deltaMode === 1 ? ev.deltaY * 16 : ev.deltaY;
    zoomAt(g.md(px), g.cd(py), Math.exp(Math.max(-2, Math.min(2, dy * 0.002))));
  }, { passive: false });

  function zoomButton(factor) {
    const g = geometry();
    zoomAt((g.md0 + g.md1) / 2, (g.cd0 + g.cd1) / 2, factor);
  }
  $('zoom-in').addEventListener('click', () => zoomButton(0.5));
  $('zoom-out').addEventListener('click', () => zoomButton(2));
  $('zoom-fit').addEventListener('click', fit);
  for (const [id, key] of [['f-class', 'class'], ['f-decision', 'decision'], ['f-review', 'review']]) {
    $(id).addEventListener('change', (ev) => {
      M.filters[key] = ev.target.value;
      requestDraw();
      schedule(0);
    });
  }

  // ---- detail panel -------------------------------------------------------

  function laneName(lane) {
    if (lane == null || lane < 0) return 'none';
    return WI.laneLabel(M.summary && M.summary.lanes && M.summary.lanes[lane], lane);
  }

  function detailRows(d) {
    const mm = (m) => fmt.num(m * 1000, 1);
    return [
      ['ID', String(d.defect_id)],
      ['Class', d.class || '(none)', d.class],
      ['Severity', d.severity || '–'],
      ['Decision', d.decision || '–'],
      ['Review', d.review_status ? d.review_status + (d.review_label ? ' → ' + d.review_label : '') : 'not reviewed'],
      ['MD', `${fmt.num(d.md_start_m, 3)}–${fmt.num(d.md_end_m, 3)} m`],
      ['MD extent', `${mm(d.md_end_m - d.md_start_m)} mm`],
      ['CD', `${fmt.num(d.cd_start_mm, 1)}–${fmt.num(d.cd_end_mm, 1)} mm`],
      ['CD extent', `${fmt.num(d.cd_end_mm - d.cd_start_mm, 1)} mm`],
      ['Area', `${fmt.num(d.area_mm2, 2)} mm²`],
      ['Contrast', `${fmt.num(d.contrast, 1)} (${d.polarity || '–'})`],
      ['Score', `peak ${fmt.num(d.peak_score, 3)} · mean ${fmt.num(d.mean_score, 3)}`],
      ['Detector', d.detector || '–'],
      ['Camera', String(d.camera)],
      ['Lane', laneName(d.lane)],
      ['Mark', d.mark && d.mark.status ? d.mark.status : 'none'],
      ['Time', fmt.time(d.time)],
      ['Encoder', fmt.int(d.encoder_count)],
      ['Learned class', d.learned_class ? `${d.learned_class} (${fmt.num(100 * d.learned_confidence, 0)} % sure${d.rule_class && d.rule_class !== d.class ? ', overrode ' + d.rule_class : ''})` : 'none'],
      ['Recipe version', d.recipe_version || 'not recorded'],
      ['Model version', d.model_version || (d.recipe_version ? 'none (threshold only)' : 'not recorded')],
    ];
  }

  function fillFields(table, d) {
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const [label, value, cls] of detailRows(d)) {
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      const td = document.createElement('td');
      th.textContent = label;
      td.textContent = value;
      if (cls !== undefined) td.prepend(WI.swatch(cls), ' ');
      tr.append(th, td);
      body.append(tr);
    }
  }
  WI.fillFields = fillFields;

  let detailSeq = 0;

  async function select(d) {
    M.selected = d;
    requestDraw();
    const seq = ++detailSeq;
    renderDetail(d, null);
    if (!d) return;
    const rollId = d.roll_id || M.rollId;
    try {
      const body = await WI.getJSON(`${WI.rollURL(rollId)}/defects/${d.defect_id}`);
      if (seq !== detailSeq) return;
      renderDetail(body.defect || d, body);
    } catch (e) {
      if (seq !== detailSeq) return;
      $('detail-history').hidden = false;
      $('detail-reviews').replaceChildren(histItem('history unavailable: ' + e.message));
      $('detail-marks').replaceChildren();
    }
  }

  function histItem(text) {
    const li = document.createElement('li');
    li.textContent = text;
    return li;
  }

  function renderDetail(d, body) {
    const table = $('detail-table');
    $('detail-empty').hidden = !!d;
    table.hidden = !d;
    $('detail-crop').hidden = !d;
    if (!body) $('detail-history').hidden = true;
    if (!d) return;
    const crop = $('detail-crop');
    const cur = crop.firstElementChild;
    if (!cur || cur.dataset.ref !== (d.image_ref || '')) {
      const el = WI.cropElement(d, true);
      el.dataset.ref = d.image_ref || '';
      crop.replaceChildren(el);
    }
    fillFields(table, d);
    if (!body) return;
    $('detail-history').hidden = false;
    const reviews = body.reviews || [], marks = body.marks || [];
    $('detail-reviews').replaceChildren(...(reviews.length ? reviews.map((r) => histItem(
      `${fmt.time(r.time)} · ${r.reviewer} · ${r.action}${r.label ? ' → ' + r.label : ''}`)) : [histItem('none')]));
    $('detail-marks').replaceChildren(...(marks.length ? marks.map((m) => histItem(
      `${fmt.time(m.time)} · ${m.status} · head ${m.head || '–'} · ${fmt.num(m.md_m, 3)} m` +
      (m.error ? ' · ' + m.error : ''))) : [histItem('none')]));
  }

  // ---- events -------------------------------------------------------------

  on('rollchange', ({ id }) => switchRoll(id));
  on('classes', () => { renderLegend(); renderFilters(); });
  on('tab', ({ tab }) => { if (tab === 'map') resize(); });
  on('status', (st) => {
    if (!st || st.roll_id !== M.rollId) return;
    if (M.fitted) {
      fitView();
      if (need()) schedule(300);
    }
    requestDraw();
  });
  on('defect', (d) => {
    if (d.roll_id !== M.rollId) return;
    if (M.mode === 'glyph' && M.loaded && M.loaded.key === filterKey() &&
        d.md_end_m >= M.loaded.md0 && d.md_start_m <= M.loaded.md1) {
      if (passes(d) && !M.defects.some((x) => x.defect_id === d.defect_id)) M.defects.push(d);
      if (M.defects.length > GLYPH_MAX * 1.5) markStale();
      requestDraw();
    } else if (M.mode === 'grid') {
      markStale();
    }
  });
  const applyReview = (rollId, defectId, fresh) => {
    if (rollId !== M.rollId) return;
    const i = M.defects.findIndex((x) => x.defect_id === defectId);
    if (i >= 0 && fresh) M.defects[i] = fresh;
    if (M.filters.review) markStale();
    if (M.selected && M.selected.defect_id === defectId) select(fresh || M.selected);
    requestDraw();
  };
  on('reviewed', (d) => applyReview(d.roll_id, d.defect_id, d));
  on('review', (ev) => {
    if (!ev) return;
    const d = ev.defect || null;
    applyReview(ev.roll_id || (d && d.roll_id), ev.defect_id || (d && d.defect_id), d);
  });
  on('roll', (ev) => {
    if (!ev || ev.roll_id !== M.rollId) return;
    if (ev.kind === 'splice') { M.splices.push({ md_m: ev.md_m, note: ev.note }); requestDraw(); }
    if (ev.kind === 'end') loadRoll();
  });
  on('reset', () => { const id = M.rollId; M.rollId = ''; switchRoll(id); });
  on('select', (d) => {
    if (!d) return;
    if (d.roll_id === M.rollId) {
      const g = geometry();
      const md = (d.md_start_m + d.md_end_m) / 2;
      if (md < g.md0 || md > g.md1) centreOn(md, (d.cd_start_mm + d.cd_end_mm) / 2, Math.min(g.md1 - g.md0, 20));
    }
    select(d);
  });

  // Keep an open roll's length, uninspected ranges, density and grades
  // current; closed rolls do not change.
  setInterval(() => {
    if (!M.rollId || !M.roll || !M.roll.open || document.hidden) return;
    loadRoll();
    loadDensity();
    if (WI.state.tab === 'map') loadSummary();
  }, 5000);
  setInterval(() => { if (M.dirty) draw(); }, 250); // in case animation frames are paused

  new ResizeObserver(resize).observe(canvas);
  renderLegend();
})();
