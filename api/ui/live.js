// Live view: the line's status (pushed by the feed every second), defects
// per class over the last 100 m of the roll being written, and the newest
// defects with their crops.
//
// The last 100 m are loaded once per live roll (and after a feed reset)
// from /api/rolls/{id}/defects?md_from=..., then kept up to date from
// `defect` events; defects more than 100 m behind the line are dropped.
'use strict';

(() => {
  const { $, fmt, on } = WI;
  const WINDOW_M = 100;
  const NEWEST = 24;     // thumbnails shown
  const PAGE = 10000;

  const live = {
    rollId: '',
    gen: 0,
    defects: [],         // the roll's defects within WINDOW_M of the line, in arrival order
    seen: new Set(),     // their IDs
    md: 0,
    dirty: true,
    galleryKey: '',
    loaded: false,       // the window of live.rollId has been loaded (else the page says "Loading")
  };

  function renderStatus(st) {
    const s = st || {};
    const stateEl = $('st-state');
    stateEl.textContent = s.state || '–';
    stateEl.className = s.state || '';
    $('st-roll').textContent = s.roll_id || '–';
    $('st-speed').textContent = fmt.num(s.speed_m_per_min, 1);
    $('st-md').textContent = fmt.num(s.md_m, 2);
    $('st-width').textContent = fmt.num(s.web_width_mm, 0);
    $('st-lines').textContent = fmt.int(s.lines_in);
    $('st-dropped').textContent = fmt.int(s.blocks_dropped);
    $('st-dropped-lines').textContent = fmt.int(s.lines_dropped);
    $('st-uninspected').textContent = fmt.num(s.uninspected_m, 2);
    $('st-roll-dropped').textContent = fmt.int(s.roll_blocks_dropped);
    $('st-roll-dropped').classList.toggle('bad', s.roll_blocks_dropped > 0);
    $('st-defects').textContent = fmt.int(s.defects);
    // Per-roll figures come from the roll map (counts_from "rollmap");
    // the engine's own counters run since the process started.
    $('st-since').textContent = s.started ? fmt.time(s.started) : '';
    $('st-defects').title = s.counts_from === 'engine'
      ? 'the engine\'s count: the roll map could not be read' + (s.counts_error ? ' (' + s.counts_error + ')' : '')
      : 'from the roll map';
    // Lost inspection is never quiet: red and hatched when non-zero.
    $('st-dropped').classList.toggle('bad', s.blocks_dropped > 0);
    $('st-dropped-lines').classList.toggle('bad', s.lines_dropped > 0);
    $('st-uninspected-wrap').classList.toggle('bad', s.uninspected_m > 0);

    renderPersistence(s.persistence_error);

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
      li.append(WI.swatch(cls), name, n);
      ul.append(li);
    }
  }

  // A roll map that cannot be written (a full disk, an I/O error) is a
  // red banner on every tab until the writes succeed again: what the
  // line shows is not being saved. A roll closed while failing lost its
  // unsaved records, and says so for the rest of the engine's run.
  function renderPersistence(pe) {
    const el = $('persist-banner');
    if (!pe) { el.hidden = true; el.replaceChildren(); return; }
    const head = pe.lost
      ? `Roll ${pe.roll} was closed with records that are NOT on disk.`
      : `The roll map is NOT being saved (roll ${pe.roll}): inspection results since ${fmt.time(pe.since)} are only in memory.`;
    const detail = document.createElement('small');
    detail.textContent = ` ${pe.message} · ${fmt.int(pe.failures)} failed write${pe.failures === 1 ? '' : 's'}, last ${fmt.time(pe.last)}` +
      (pe.rolls > 1 ? ` · ${pe.rolls} rolls affected` : '');
    el.replaceChildren(head, detail);
    el.hidden = false;
  }

  async function loadWindow(id) {
    const gen = ++live.gen;
    live.rollId = id;
    live.defects = [];
    live.seen = new Set();
    live.dirty = true;
    live.loaded = false;
    if (!id) return;
    const from = Math.max(0, live.md - WINDOW_M);
    let after = 0;
    try {
      for (let pages = 0; pages < 5; pages++) {
        const page = await WI.getJSON(`${WI.rollURL(id)}/defects?md_from=${from}&after=${after}&limit=${PAGE}`);
        if (gen !== live.gen) return;
        for (const d of page.defects) add(d);
        if (page.next_after != null) after = page.next_after;
        if (page.defects.length < PAGE) break;
      }
    } catch (e) {
      if (gen === live.gen && e.status !== 404) WI.message(`Last 100 m of ${id}: ${e.message}`);
    }
    if (gen === live.gen) { live.loaded = true; live.dirty = true; }
  }

  function add(d) {
    if (live.seen.has(d.defect_id)) return;
    live.seen.add(d.defect_id);
    live.defects.push(d);
    live.dirty = true;
  }

  function prune() {
    const from = live.md - WINDOW_M;
    if (!live.defects.length || live.defects[0].md_end_m >= from) return;
    const keep = live.defects.filter((d) => d.md_end_m >= from);
    live.seen = new Set(keep.map((d) => d.defect_id));
    live.defects = keep;
  }

  function render() {
    if (!live.dirty) return;
    live.dirty = false;
    prune();
    const from = Math.max(0, live.md - WINDOW_M);
    $('last100-range').textContent = live.rollId ? `${fmt.num(from, 0)}–${fmt.num(live.md, 0)} m` : '';
    const counts = new Map();
    for (const d of live.defects) counts.set(d.class, (counts.get(d.class) || 0) + 1);
    const span = Math.max(1e-9, live.md - from);
    const body = $('live-classes').tBodies[0];
    body.replaceChildren();
    for (const cls of [...counts.keys()].sort()) {
      const tr = document.createElement('tr');
      const name = document.createElement('td');
      name.append(WI.swatch(cls), ' ', cls || '(none)');
      const n = document.createElement('td');
      n.textContent = fmt.int(counts.get(cls));
      const rate = document.createElement('td');
      rate.textContent = fmt.num((counts.get(cls) * 100) / Math.max(span, 1), 1);
      tr.append(name, n, rate);
      body.append(tr);
    }
    // Empty only once loaded: before, the page says it is loading.
    const waiting = !live.loaded && !!(live.rollId || !WI.state.status);
    $('live-classes').hidden = counts.size === 0;
    $('last100-empty').hidden = counts.size !== 0;
    $('last100-empty').textContent = waiting ? 'Loading…' : 'No defects in the last 100 m.';

    const newest = live.defects.slice(-NEWEST).reverse();
    $('newest-empty').textContent = waiting ? 'Loading…' : 'No defects yet on this roll.';
    $('newest-empty').hidden = newest.length !== 0;
    const key = newest.map((d) => d.defect_id).join(',');
    if (key === live.galleryKey) return;
    live.galleryKey = key;
    const ul = $('newest-list');
    ul.replaceChildren();
    for (const d of newest) {
      const li = document.createElement('li');
      li.className = 'thumb';
      li.tabIndex = 0;
      li.title = 'Show on the roll map';
      li.append(WI.cropElement(d, false));
      const cap = document.createElement('div');
      cap.className = 'cap';
      cap.append(WI.swatch(d.class), ` #${d.defect_id} ${d.class || '(none)'}`);
      const sub = document.createElement('div');
      sub.className = 'sub';
      sub.textContent = `${fmt.num(d.md_start_m, 2)} m · ${fmt.num(d.cd_start_mm, 0)} mm · ${d.decision}`;
      li.append(cap, sub);
      const show = () => { WI.showTab('map'); WI.emit('select', d); };
      li.addEventListener('click', show);
      li.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') show(); });
      ul.append(li);
    }
    $('newest-empty').hidden = newest.length !== 0;
  }

  on('status', (st) => {
    renderStatus(st);
    const id = st && st.roll_id ? st.roll_id : '';
    if (st && st.md_m != null && isFinite(st.md_m)) live.md = st.md_m;
    if (id !== live.rollId) loadWindow(id);
    live.dirty = true;
  });
  on('defect', (d) => {
    if (d.roll_id && d.roll_id !== live.rollId) return;
    live.md = Math.max(live.md, d.md_end_m);
    add(d);
  });
  on('reset', () => loadWindow(live.rollId));

  setInterval(render, 500);
})();
