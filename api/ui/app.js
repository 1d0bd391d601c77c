// Quality workplace, shared core: API calls, formatting, class colours and
// glyph shapes, tabs, roll selection and the live event feed.
//
// The page is five plain scripts sharing window.WI (this file first):
//   app.js     this core
//   live.js    live view (line status, last 100 m, newest defects)
//   rollmap.js roll map canvas, defect details, roll summary and report links
//   review.js  keyboard-driven review queue
//   calibrate.js threshold curves from reviews, and applying a proposal
//
// Live feed: one EventSource on /api/events (kinds status, defect, roll,
// review, reset). The browser resends Last-Event-ID when it reconnects by
// itself; when the stream closes for good (server restarted, 4xx) a new
// EventSource is made after a pause with ?last_event_id=N. On `reset` (the
// server no longer holds what we missed) every view refetches. While the
// feed is down, /api/status is polled once a second instead.
//
// Events of the bus (WI.bus, an EventTarget; detail is the payload):
//   status   engine.Status         defect  rollmap.Defect   roll  RollEvent
//   review   ReviewEvent           reset   -                rollchange {id}
//   tab      {tab}                 reviewed {defect} (a review made here)
'use strict';

window.WI = (() => {
  const $ = (id) => document.getElementById(id);
  const bus = new EventTarget();
  const emit = (kind, detail) => bus.dispatchEvent(new CustomEvent(kind, { detail }));
  const on = (kind, fn) => bus.addEventListener(kind, (ev) => fn(ev.detail));

  // ---- API ----------------------------------------------------------------

  const TOKEN_KEY = 'webinspect.token';

  async function request(url, opts) {
    const headers = { Accept: 'application/json' };
    if (opts && opts.body !== undefined) headers['Content-Type'] = 'application/json';
    const token = localStorage.getItem(TOKEN_KEY);
    // Changes need the token when the server has one; reads too when it
    // protects them (it ignores a token it does not need).
    if (token) headers.Authorization = 'Bearer ' + token;
    const res = await fetch(url, {
      cache: 'no-store', headers,
      method: (opts && opts.method) || 'GET',
      body: opts && opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
      signal: opts && opts.signal,
    });
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) {
      const err = new Error((body && body.error) || `${res.status} ${res.statusText}`);
      err.status = res.status;
      throw err;
    }
    return body;
  }
  const getJSON = (url, signal) => request(url, { signal });
  const postJSON = (url, body) => request(url, { method: 'POST', body });

  const rollURL = (id) => '/api/rolls/' + encodeURIComponent(id);

  // imageURL returns the URL of a defect crop named by image_ref (the
  // sha256 of the PNG, with or without ".png"), or '' when there is none.
  function imageURL(ref) {
    if (!ref) return '';
    let name = String(ref).split('/').pop();
    if (!name.endsWith('.png')) name += '.png';
    return '/api/images/' + encodeURIComponent(name);
  }

  // CROP_AXES says how a crop lies: the camera's lines run across it (CD),
  // successive lines down it (MD) - the roll map has MD across, so each
  // crop says so.
  const CROP_AXES = '→ CD across · ↓ MD down (the map has MD across)';

  // cropElement returns the defect's crop (an <img>, in a figure with its
  // axes when big) or a placeholder saying why there is none; a crop that
  // fails to load becomes a placeholder too.
  function cropElement(d, big) {
    const url = imageURL(d && d.image_ref);
    if (!url) return placeholder(d && d.image_error ? 'no crop: ' + d.image_error : 'no crop recorded');
    const img = document.createElement('img');
    img.src = url;
    img.alt = `crop of defect ${d.defect_id}`;
    img.title = CROP_AXES;
    img.className = big ? 'crop-img big' : 'crop-img';
    img.decoding = 'async';
    img.addEventListener('error', () => img.replaceWith(placeholder('crop not in the archive')), { once: true });
    if (!big) return img;
    const fig = document.createElement('figure');
    fig.className = 'crop-fig';
    const cap = document.createElement('figcaption');
    cap.className = 'crop-axes';
    cap.textContent = CROP_AXES;
    fig.append(img, cap);
    return fig;
  }

  // laneLabel is how a lane is named everywhere (map, details, grades,
  // report): its recipe name, else L1, L2, ... from the operator side.
  function laneLabel(lane, index) {
    return (lane && lane.name) || `L${index + 1}`;
  }
  function placeholder(text) {
    const p = document.createElement('div');
    p.className = 'noimg';
    p.textContent = text;
    return p;
  }

  let msgTimer = 0;
  function message(text, sticky) {
    $('message').textContent = text || '';
    clearTimeout(msgTimer);
    if (text && !sticky) msgTimer = setTimeout(() => { $('message').textContent = ''; }, 8000);
  }

  // ---- formatting ---------------------------------------------------------

  const fmt = {
    int: (n) => (n == null || !isFinite(n) ? '–' : Math.round(n).toLocaleString('en-US')),
    num: (n, d) => (n == null || !isFinite(n) ? '–' : n.toFixed(d)),
    time: (t) => (t ? new Date(t).toLocaleString() : '–'),
    pct: (f) => (f == null || !isFinite(f) ? '–' : (100 * f).toFixed(1) + ' %'),
  };

  // ---- class colours and shapes -------------------------------------------

  // Colour-blind-friendly palette; each class also gets a shape so that
  // colour is never the only cue. A class's colour and shape are a fixed
  // function of its name, the same on every page load and in the roll
  // report (api/classes.go is the same function; a browser test checks
  // that they agree): the built-in recipes' and the simulator's classes
  // have a fixed pair each, any other name takes PALETTE[h % 10] and
  // SHAPES[floor(h / 10) % 8] of h = FNV-1a 32 of its UTF-8 bytes.
  const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#e15759',
    '#76b7b2', '#edc948', '#ff9da7', '#9c755f', '#3b3b3b'];
  const SHAPES = ['circle', 'square', 'triangle', 'diamond', 'hexagon', 'triangle-down', 'star', 'plus'];
  const KNOWN = {
    hole: ['#e15759', 'circle'], stain: ['#9c755f', 'square'], streak: ['#4e79a7', 'triangle'],
    knot: ['#f28e2b', 'diamond'], slub: ['#59a14f', 'hexagon'], crease: ['#b07aa1', 'triangle-down'],
    gel: ['#76b7b2', 'star'], scratch: ['#edc948', 'plus'], other: ['#3b3b3b', 'circle'],
    'grain-fault': ['#ff9da7', 'diamond'], scar: ['#b07aa1', 'star'], '': ['#3b3b3b', 'plus'],
  };
  function fnv1a(text) {
    let h = 0x811c9dc5;
    for (const b of new TextEncoder().encode(text)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
    return h >>> 0;
  }
  function styleOf(name) {
    const k = Object.prototype.hasOwnProperty.call(KNOWN, name) ? KNOWN[name] : null;
    if (k) return { colour: k[0], shape: k[1] };
    const h = fnv1a(name);
    return { colour: PALETTE[h % PALETTE.length], shape: SHAPES[Math.floor(h / PALETTE.length) % SHAPES.length] };
  }
  // classes holds the classes seen on this page (for the legend and the
  // filters), in the order seen; the order never changes a class's style.
  const classes = new Map(); // class -> {colour, shape}

  function classStyle(cls) {
    const key = cls || '';
    let s = classes.get(key);
    if (!s) {
      s = styleOf(key);
      classes.set(key, s);
      emit('classes', null);
    }
    return s;
  }
  const colourOf = (cls) => classStyle(cls).colour;
  function seedClasses(names) {
    for (const n of [...names].sort()) classStyle(n);
  }

  // swatch returns a legend mark: the class colour in the class's shape.
  function swatch(cls, extraClass) {
    const s = document.createElement('span');
    if (cls == null) {
      s.className = 'swatch' + (extraClass ? ' ' + extraClass : '');
      return s;
    }
    const st = classStyle(cls);
    s.className = 'swatch shape-' + st.shape + (extraClass ? ' ' + extraClass : '');
    s.style.backgroundColor = st.colour;
    return s;
  }

  // ---- tabs ---------------------------------------------------------------

  const TABS = ['live', 'map', 'review', 'calibrate'];
  const state = {
    tab: 'map',
    status: null,      // last engine.Status, or null
    follow: true,      // show the roll the engine is writing
    rollId: '',        // roll shown in the map and review tabs
    rollList: [],
  };

  function showTab(tab) {
    if (!TABS.includes(tab)) tab = 'map';
    state.tab = tab;
    for (const t of TABS) {
      $('tab-' + t).hidden = t !== tab;
      const b = $('tab-btn-' + t);
      b.setAttribute('aria-selected', String(t === tab));
      b.classList.toggle('active', t === tab);
    }
    const want = '#' + tab;
    if (location.hash !== want) history.replaceState(null, '', location.pathname + location.search + want);
    emit('tab', { tab });
  }
  for (const b of document.querySelectorAll('nav.tabs button')) {
    b.addEventListener('click', () => showTab(b.dataset.tab));
  }
  window.addEventListener('hashchange', () => showTab(location.hash.slice(1)));

  // ---- rolls --------------------------------------------------------------

  async function loadRollList() {
    try {
      const body = await getJSON('/api/rolls');
      state.rollList = body.rolls || [];
      const sel = $('roll-select');
      const keep = state.follow ? '' : state.rollId;
      sel.replaceChildren(new Option('Live (current roll)', ''));
      for (const r of state.rollList) {
        const label = `${r.id}${r.open ? ' (open)' : ''} · ${fmt.num(r.length_m, 0)} m · ${fmt.int(r.defects)} defects`;
        sel.append(new Option(label, r.id));
      }
      sel.value = keep;
      if (sel.value !== keep) sel.value = '';
      if (body.warning) message('Some rolls could not be read: ' + body.warning, true);
    } catch (e) {
      message('Roll list: ' + e.message);
    }
  }

  // The roll to show while following: the engine's, else the newest.
  function followedRoll() {
    const st = state.status;
    if (st && st.roll_id) return st.roll_id;
    return state.rollList.length ? state.rollList[0].id : '';
  }

  function setRoll(id) {
    if (id === state.rollId) return;
    state.rollId = id;
    const u = new URL(location.href);
    if (!state.follow && id) u.searchParams.set('roll', id); else u.searchParams.delete('roll');
    history.replaceState(null, '', u.pathname + u.search + u.hash);
    emit('rollchange', { id });
  }

  function checkFollow() {
    if (!state.follow) return;
    const id = followedRoll();
    if (id && id !== state.rollId) setRoll(id);
  }

  $('roll-select').addEventListener('change', (ev) => {
    const id = ev.target.value;
    state.follow = id === '';
    if (state.follow) checkFollow(); else setRoll(id);
  });

  // ---- status and the live feed -------------------------------------------

  function setStatus(st) {
    state.status = st;
    emit('status', st);
    checkFollow();
  }

  async function pollStatus() {
    try {
      setStatus(await getJSON('/api/status'));
      $('st-error').textContent = '';
    } catch (e) {
      $('st-error').textContent = e.status === 503 ? 'No engine is running.' : 'Status: ' + e.message;
      setStatus(null);
    }
  }

  const feed = { es: null, lastId: '', up: false, retry: 0, poll: 0 };

  function feedState(text, up) {
    feed.up = up;
    const el = $('feed');
    el.textContent = 'feed: ' + text;
    el.classList.toggle('up', up);
    el.classList.toggle('down', !up);
    // Poll the status while the feed is down.
    if (!up && !feed.poll) feed.poll = setInterval(pollStatus, 1000);
    if (up && feed.poll) { clearInterval(feed.poll); feed.poll = 0; }
  }

  function connect() {
    if (typeof EventSource === 'undefined') { feedState('unsupported', false); return; }
    const url = '/api/events' + (feed.lastId ? '?last_event_id=' + encodeURIComponent(feed.lastId) : '');
    const es = new EventSource(url);
    feed.es = es;
    const handle = (kind, fn) => es.addEventListener(kind, (ev) => {
      if (ev.lastEventId) feed.lastId = ev.lastEventId;
      let data = null;
      try { data = ev.data ? JSON.parse(ev.data) : null; } catch (_) { return; }
      fn(data);
    });
    es.addEventListener('open', () => { feed.retry = 0; feedState('live', true); });
    handle('status', (st) => setStatus(st));
    handle('defect', (d) => { if (d) { classStyle(d.class); emit('defect', d); } });
    handle('roll', (ev) => {
      emit('roll', ev);
      if (ev && (ev.kind === 'start' || ev.kind === 'end')) loadRollList();
    });
    handle('review', (ev) => emit('review', ev));
    handle('reset', () => { message('Live feed restarted: reloading.'); emit('reset', null); pollStatus(); loadRollList(); });
    es.addEventListener('error', () => {
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (HTTP error or wrong content type): retry
        // ourselves, resuming after the last event seen.
        feedState('down', false);
        es.close();
        const wait = Math.min(30000, 1000 * 2 ** Math.min(feed.retry++, 5));
        setTimeout(connect, wait);
      } else {
        feedState('reconnecting', false);
      }
    });
  }

  // openSession hands the saved token to the server as an HttpOnly
  // session cookie, for the reads a browser cannot add a header to (the
  // event stream, crops) when the server protects reads. Without a token
  // it does nothing; a server without one ignores it.
  function openSession() {
    if (!localStorage.getItem(TOKEN_KEY)) return Promise.resolve();
    return postJSON('/api/session').catch(() => {});
  }

  // ---- start --------------------------------------------------------------

  function start() {
    const params = new URLSearchParams(location.search);
    const roll = params.get('roll');
    if (roll) {
      state.follow = false;
      state.rollId = '';
    }
    showTab(location.hash.slice(1) || 'map');
    if (roll) setRoll(roll); // at once: the list is only for the selector
    openSession().then(() => {
      Promise.all([loadRollList(), pollStatus()]).then(() => {
        if (roll) $('roll-select').value = roll;
        else checkFollow();
      });
      connect();
    });
    setInterval(loadRollList, 15000);
  }

  return {
    $, bus, on, emit, state, getJSON, postJSON, rollURL, imageURL, cropElement, placeholder,
    message, fmt, classStyle, styleOf, laneLabel, colourOf, seedClasses, swatch, classes, start, showTab,
    TOKEN_KEY, SHAPES, openSession,
  };
})();

// Every script is deferred and runs in order; the last one starts the page.
window.addEventListener('DOMContentLoaded', () => WI.start());
