// Review queue: the shown roll's defects that need a person's decision,
// most uncertain first (/api/rolls/{id}/review-queue), worked through from
// the keyboard:
//   c confirm · f false alarm · r reclassify (type or pick the class, Enter)
//   n or j next · k previous
// Each action POSTs /api/rolls/{id}/defects/{did}/review with the reviewer's
// name (asked once, kept in localStorage) and takes the defect off the
// list; the statistics (/review-stats) are refetched after each one.
'use strict';

(() => {
  const { $, fmt, on } = WI;
  const REVIEWER_KEY = 'webinspect.reviewer';
  const LIMIT = 100;

  const R = {
    rollId: '',
    gen: 0,
    items: [],        // queue entries (Defect + uncertainty), in rank order
    index: 0,         // the current one
    next: null,       // cursor for the next page, null at the end
    loading: false,
    busy: false,      // a POST in flight
    loadedFor: null,  // roll whose queue is loaded
    pending: null,    // defects of the roll still to review (the queue's size), from the server
    done: 0,          // reviews made here
  };
  WI.review = R;

  const reviewer = $('reviewer');
  reviewer.value = localStorage.getItem(REVIEWER_KEY) || '';
  reviewer.addEventListener('change', () => localStorage.setItem(REVIEWER_KEY, reviewer.value.trim()));
  const token = $('token');
  token.value = localStorage.getItem(WI.TOKEN_KEY) || '';
  token.addEventListener('change', () => {
    const v = token.value.trim();
    if (v) localStorage.setItem(WI.TOKEN_KEY, v); else localStorage.removeItem(WI.TOKEN_KEY);
    WI.openSession();
  });

  function result(text, bad) {
    const p = $('rv-result');
    p.textContent = text;
    p.classList.toggle('error', !!bad);
  }

  async function loadQueue(more) {
    const id = R.rollId;
    if (!id || R.loading) return;
    R.loading = true;
    const gen = R.gen;
    try {
      let url = `${WI.rollURL(id)}/review-queue?limit=${LIMIT}`;
      if (more && R.next != null) url += '&after_rank=' + encodeURIComponent(R.next);
      const body = await WI.getJSON(url);
      if (gen !== R.gen) return;
      const got = body.defects || [];
      if (more) {
        const have = new Set(R.items.map((d) => d.defect_id));
        R.items.push(...got.filter((d) => !have.has(d.defect_id)));
      } else {
        const cur = R.items[R.index];
        R.items = got;
        const i = cur ? R.items.findIndex((d) => d.defect_id === cur.defect_id) : -1;
        R.index = i >= 0 ? i : Math.min(R.index, Math.max(0, R.items.length - 1));
      }
      R.next = body.next == null || got.length < LIMIT ? null : body.next;
      R.loadedFor = id;
      if (body.pending != null) R.pending = body.pending;
      for (const d of got) WI.classStyle(d.class);
      render();
    } catch (e) {
      if (gen === R.gen) result(`Review queue of ${id}: ${e.message}`, true);
    } finally {
      R.loading = false;
    }
  }

  async function loadStats() {
    const id = R.rollId, gen = R.gen;
    if (!id) return;
    try {
      const s = await WI.getJSON(`${WI.rollURL(id)}/review-stats`);
      if (gen !== R.gen) return;
      const dl = $('rv-stats');
      dl.replaceChildren();
      const row = (k, v) => {
        const dt = document.createElement('dt'), dd = document.createElement('dd');
        dt.textContent = k; dd.textContent = v;
        dl.append(dt, dd);
      };
      row('Pending', fmt.int(s.pending));
      row('Reviewed', fmt.int(s.reviewed));
      row('Confirmed', fmt.int(s.confirmed));
      row('False alarms', fmt.int(s.false_alarm));
      row('Reclassified', fmt.int(s.reclassified));
      row('True detection rate', fmt.pct(s.true_detection_rate));
      row('False reject rate', fmt.pct(s.false_reject_rate));
      row('Review load', `${fmt.num(s.review_load_per_100m, 1)} per 100 m`);
      if (s.pending != null && R.loadedFor === id) { R.pending = s.pending; render(); }
      const badge = $('review-badge');
      badge.hidden = !(s.pending > 0);
      badge.textContent = fmt.int(s.pending);
    } catch (_) { /* stats are optional */ }
  }

  function render() {
    const body = $('queue').tBodies[0];
    body.replaceChildren();
    R.items.forEach((d, i) => {
      const tr = document.createElement('tr');
      tr.dataset.index = String(i);
      if (i === R.index) tr.className = 'current';
      const cells = [String(i + 1), '#' + d.defect_id, null, d.decision, d.severity,
        fmt.num(d.md_start_m, 2), fmt.num(d.uncertainty, 3)];
      for (const v of cells) {
        const td = document.createElement('td');
        if (v === null) {
          td.append(WI.swatch(d.class), ' ', d.class || '(none)');
          if (d.learned_class) td.append(` · learned ${d.learned_class} ${fmt.num(100 * d.learned_confidence, 0)} %`);
        }
        else td.textContent = v;
        tr.append(td);
      }
      tr.addEventListener('click', () => { R.index = i; render(); });
      body.append(tr);
    });
    // "Nothing to review" only once the queue has answered.
    const loaded = R.rollId && R.loadedFor === R.rollId;
    $('queue-empty').textContent = !R.rollId ? 'No roll chosen.' : loaded ? 'Nothing to review on this roll.' : 'Loading…';
    $('queue-empty').hidden = R.items.length !== 0;
    $('queue-more').hidden = R.next == null;
    // The total is the server's count of defects still to review, not the
    // length of the page loaded so far.
    const total = R.pending != null ? Math.max(R.pending, R.items.length) : R.items.length;
    $('queue-count').textContent = R.items.length ? `${R.index + 1} of ${fmt.int(total)} to review` : '';
    const cur = body.querySelector('tr.current');
    if (cur) cur.scrollIntoView({ block: 'nearest' });
    renderCurrent();
  }

  function renderCurrent() {
    const d = R.items[R.index];
    $('rv-id').textContent = d ? '#' + d.defect_id : '–';
    const crop = $('rv-crop');
    const table = $('rv-fields');
    table.hidden = !d;
    for (const b of ['rv-confirm', 'rv-false', 'rv-reclass']) $(b).disabled = !d || R.busy;
    if (!d) {
      crop.replaceChildren(WI.placeholder('nothing selected'));
      table.tBodies[0].replaceChildren();
      return;
    }
    crop.replaceChildren(WI.cropElement(d, true));
    if (WI.fillFields) WI.fillFields(table, d);
  }

  function move(step) {
    if (!R.items.length) return;
    R.index = Math.min(R.items.length - 1, Math.max(0, R.index + step));
    if (R.index >= R.items.length - 5 && R.next != null) loadQueue(true);
    render();
  }

  async function act(action, label) {
    const d = R.items[R.index];
    if (!d || R.busy) return;
    const name = reviewer.value.trim();
    if (!name) {
      result('Enter your name as reviewer first (it is kept for next time).', true);
      reviewer.focus();
      return;
    }
    localStorage.setItem(REVIEWER_KEY, name);
    R.busy = true;
    renderCurrent();
    const body = { action, reviewer: name };
    if (label) body.label = label;
    try {
      const res = await WI.postJSON(`${WI.rollURL(R.rollId)}/defects/${d.defect_id}/review`, body);
      R.done++;
      if (R.pending != null) R.pending = Math.max(0, R.pending - 1);
      const i = R.items.indexOf(d);
      if (i >= 0) R.items.splice(i, 1);
      if (R.index >= R.items.length) R.index = Math.max(0, R.items.length - 1);
      result(`#${d.defect_id}: ${action.replace('_', ' ')}${label ? ' → ' + label : ''} (by ${name})`);
      WI.emit('reviewed', (res && res.defect) || Object.assign({}, d, { review_status: action === 'confirm' ? 'confirmed' : action, review_label: label || '' }));
      if (R.items.length < 5 && R.next != null) loadQueue(true);
      loadStats();
    } catch (e) {
      if (e.status === 401 || e.status === 403) {
        result(`Not allowed (${e.message}): enter the API token.`, true);
        token.focus();
      } else {
        result(`#${d.defect_id}: ${e.message}`, true);
      }
    } finally {
      R.busy = false;
      render();
    }
  }

  // ---- reclassify ---------------------------------------------------------

  const form = $('rv-reclass-form');
  let reclassKey = false; // r is down
  const classInput = $('rv-class');

  function openReclass() {
    const d = R.items[R.index];
    if (!d) return;
    const list = $('rv-classes');
    list.replaceChildren(...[...WI.classes.keys()].filter((c) => c && c !== d.class).sort().map((c) => new Option(c, c)));
    form.hidden = false;
    classInput.value = '';
    classInput.focus();
  }
  function closeReclass() {
    form.hidden = true;
    classInput.blur();
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const label = classInput.value.trim();
    if (!label) { classInput.focus(); return; }
    closeReclass();
    act('reclassify', label);
  });
  classInput.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') { ev.preventDefault(); closeReclass(); } });
  $('rv-cancel').addEventListener('click', closeReclass);
  $('rv-confirm').addEventListener('click', () => act('confirm'));
  $('rv-false').addEventListener('click', () => act('false_alarm'));
  $('rv-reclass').addEventListener('click', openReclass);
  $('queue-more').addEventListener('click', () => loadQueue(true));

  document.addEventListener('keydown', (ev) => {
    if (WI.state.tab !== 'review' || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) {
      // Enter in the name or token field keeps it and hands the keys back
      // to the queue.
      if ((t === reviewer || t === token) && ev.key === 'Enter') {
        t.dispatchEvent(new Event('change'));
        t.blur();
      }
      return;
    }
    switch (ev.key) {
      case 'c': act('confirm'); break;
      case 'f': act('false_alarm'); break;
      case 'r': reclassKey = true; break; // opens on keyup, so the r is not typed into the field
      case 'n': case 'j': case 'ArrowDown': move(1); break;
      case 'k': case 'ArrowUp': move(-1); break;
      default: return;
    }
    ev.preventDefault();
  });

  document.addEventListener('keyup', (ev) => {
    if (ev.key === 'r' && reclassKey) { reclassKey = false; openReclass(); }
  });

  // ---- events -------------------------------------------------------------

  function switchRoll(id) {
    R.gen++;
    R.rollId = id;
    R.items = [];
    R.index = 0;
    R.next = null;
    R.loadedFor = null;
    R.pending = null;
    render();
    if (!id) return;
    if (WI.state.tab === 'review') {
      loadQueue(false);
      loadStats();
    } else {
      // Only the tab's badge needs the statistics now: let the map's
      // first drawing go first (both scan the roll on the server).
      const gen = R.gen;
      let done = false;
      const later = () => { if (!done && gen === R.gen) { done = true; loadStats(); } };
      WI.bus.addEventListener('mapready', later, { once: true });
      setTimeout(later, 3000);
    }
  }

  on('rollchange', ({ id }) => switchRoll(id));
  on('tab', ({ tab }) => {
    if (tab !== 'review' || !R.rollId) return;
    loadQueue(false);
    loadStats();
  });
  let refreshTimer = 0;
  const refreshSoon = () => {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = 0;
      loadStats();
      if (WI.state.tab === 'review') loadQueue(false);
    }, 1500);
  };
  on('review', (ev) => {
    // Someone (here or elsewhere) reviewed a defect: drop it from the list.
    const id = ev && (ev.defect_id || (ev.defect && ev.defect.defect_id));
    const roll = ev && (ev.roll_id || (ev.defect && ev.defect.roll_id));
    if (roll !== R.rollId) return;
    const i = R.items.findIndex((d) => d.defect_id === id);
    if (i >= 0) {
      const cur = R.items[R.index];
      R.items.splice(i, 1);
      const j = cur ? R.items.indexOf(cur) : -1;
      R.index = j >= 0 ? j : Math.min(R.index, Math.max(0, R.items.length - 1));
      render();
    }
    refreshSoon();
  });
  on('defect', (d) => {
    if (d.roll_id === R.rollId && d.decision === 'review') refreshSoon();
  });
  on('reset', () => switchRoll(R.rollId));
  render();
})();
