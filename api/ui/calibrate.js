// Calibration tab: each detector's trade-off between confirmed defects
// kept and false alarms removed as its threshold rises, computed by the
// server from the reviews of the chosen rolls (/api/calibration), drawn as
// a chart, with the proposal and a button that makes it a new recipe
// version (/api/calibration/apply, with who applied it).
'use strict';

(() => {
  const { $, fmt, on } = WI;
  const BY_KEY = 'webinspect.reviewer';
  const SVG = 'http://www.w3.org/2000/svg';
  let gen = 0;

  function svgEl(name, attrs, text) {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // chart draws confirmed kept (%) and false alarms removed (%) against
  // the threshold, with the threshold in force and the proposal marked.
  function chart(c) {
    const W = 720, H = 260, L = 48, R = 16, T = 16, B = 40;
    const pts = c.points || [];
    const prop = c.proposal ? c.proposal.threshold : null;
    const xs = pts.map((p) => p.threshold).concat(prop === null ? [] : [prop]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs) > x0 ? Math.max(...xs) : x0 + 1;
    const sx = (v) => L + (v - x0) / (x1 - x0) * (W - L - R);
    const sy = (pct) => T + (1 - pct / 100) * (H - T - B);
    const svg = svgEl('svg', { class: 'cal-chart', viewBox: `0 0 ${W} ${H}`, role: 'img',
      'aria-label': `${c.detector} detector: confirmed defects kept and false alarms removed against ${c.field}` });
    for (const pct of [0, 25, 50, 75, 100]) {
      svg.append(svgEl('line', { class: 'grid', x1: L, x2: W - R, y1: sy(pct), y2: sy(pct) }));
      svg.append(svgEl('text', { x: L - 6, y: sy(pct) + 4, 'text-anchor': 'end' }, pct + ' %'));
    }
    for (let i = 0; i <= 4; i++) {
      const v = x0 + (x1 - x0) * i / 4;
      svg.append(svgEl('text', { x: sx(v), y: H - B + 16, 'text-anchor': 'middle' }, fmt.num(v, 1)));
    }
    svg.append(svgEl('text', { x: (L + W - R) / 2, y: H - 6, 'text-anchor': 'middle' }, c.field));
    const conf = Math.max(c.confirmed, 1), fa = Math.max(c.false_alarms, 1);
    // Steps: a point's counts hold for every threshold above the previous
    // point's up to its own (a threshold equal to a score keeps it).
    const path = (val) => pts.map((p, i) => {
      const y = sy(val(p)).toFixed(1);
      const xFrom = sx(i ? pts[i - 1].threshold : p.threshold).toFixed(1);
      const xTo = (i + 1 < pts.length ? sx(p.threshold) : W - R).toFixed(1);
      return `${i ? 'L' : 'M'}${xFrom},${y} L${xTo},${y}`;
    }).join(' ');
    svg.append(svgEl('path', { class: 'kept', d: path((p) => 100 * p.confirmed_kept / conf) }));
    svg.append(svgEl('path', { class: 'removed', d: path((p) => 100 * p.false_alarms_removed / fa) }));
    svg.append(svgEl('line', { class: 'now', x1: sx(c.current), x2: sx(c.current), y1: T, y2: H - B }));
    if (prop !== null) {
      svg.append(svgEl('line', { class: 'prop', id: `cal-prop-${c.detector}`, x1: sx(prop), x2: sx(prop), y1: T, y2: H - B }));
      svg.append(svgEl('text', { x: sx(prop) + 4, y: T + 12 }, 'proposed ' + fmt.num(prop, 2)));
    }
    const legend = [['kept', 'confirmed defects kept'], ['removed', 'false alarms removed']];
    legend.forEach(([cls, text], i) => {
      const y = T + 14 + i * 14, x = W - R - 190;
      svg.append(svgEl('line', { class: cls, x1: x, x2: x + 18, y1: y - 4, y2: y - 4 }));
      svg.append(svgEl('text', { x: x + 24, y }, text));
    });
    return svg;
  }

  function curveCard(rep, c) {
    const div = document.createElement('div');
    div.className = 'cal-curve';
    div.id = 'cal-curve-' + c.detector;
    const h = document.createElement('h3');
    h.textContent = `${c.detector} detector: ${c.reviewed} of ${c.defects} defects reviewed ` +
      `(${c.confirmed} confirmed, ${c.false_alarms} false alarms); in force ${fmt.num(c.current, 2)}, ` +
      `target ${c.target_per_100m} false alarms per 100 m (${c.target_field})`;
    div.append(h, chart(c));
    const p = document.createElement('p');
    p.className = 'cal-proposal';
    if (!c.proposal) {
      p.classList.add('cal-bad');
      p.textContent = 'No proposal: ' + c.error;
      div.append(p);
      return div;
    }
    const why = c.proposal.reason.charAt(0).toUpperCase() + c.proposal.reason.slice(1);
    p.textContent = `Proposal: ${c.field} = ${fmt.num(c.proposal.threshold, 2)}. ${why}.`;
    div.append(p);
    if (c.proposal.change) {
      const row = document.createElement('div');
      row.className = 'cal-apply';
      const label = document.createElement('label');
      label.textContent = 'Applied by ';
      const by = document.createElement('input');
      by.id = 'cal-by-' + c.detector;
      by.size = 14;
      by.value = localStorage.getItem(BY_KEY) || '';
      label.append(by);
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.id = 'cal-apply-' + c.detector;
      btn.textContent = 'Apply as a new recipe version';
      const out = document.createElement('span');
      out.id = 'cal-applied-' + c.detector;
      out.setAttribute('role', 'status');
      btn.addEventListener('click', async () => {
        const who = by.value.trim();
        if (!who) { out.textContent = 'Say who applies it.'; by.focus(); return; }
        btn.disabled = true;
        try {
          const res = await WI.postJSON('/api/calibration/apply', {
            recipe: rep.recipe_version, detector: c.detector, threshold: c.proposal.threshold, by: who,
            note: `from reviews of rolls ${rep.rolls.join(', ')}`,
          });
          const v = res.version;
          out.textContent = `New recipe version ${v.id}, made by ${v.made_by} at ${v.made_at}.`;
        } catch (err) {
          out.textContent = 'Not applied: ' + err.message;
          btn.disabled = false;
        }
      });
      row.append(label, btn, out);
      div.append(row);
    }
    return div;
  }

  async function load() {
    const my = ++gen;
    const params = new URLSearchParams();
    const rolls = $('cal-rolls').value.replace(/\s+/g, '');
    const recipe = $('cal-recipe').value.trim();
    if (rolls) params.set('rolls', rolls);
    if (recipe) params.set('recipe', recipe);
    const err = $('cal-error');
    err.hidden = true;
    $('cal-summary').textContent = 'Computing…';
    try {
      const rep = await WI.getJSON('/api/calibration' + (params.toString() ? '?' + params : ''));
      if (my !== gen) return;
      $('cal-summary').textContent = `Recipe ${rep.recipe} (version ${rep.recipe_version}), ` +
        `rolls ${rep.rolls.join(', ')}: ${fmt.num(rep.length_m, 1)} m` +
        (rep.other_recipes ? `; ${rep.other_recipes} defects of other recipes left out` : '');
      if (rep.error) { err.textContent = rep.error; err.hidden = false; }
      $('cal-curves').replaceChildren(...rep.curves.map((c) => curveCard(rep, c)));
    } catch (e) {
      if (my !== gen) return;
      $('cal-summary').textContent = '';
      err.textContent = e.message;
      err.hidden = false;
      $('cal-curves').replaceChildren();
    }
  }

  // The rolls field follows the roll shown until someone types in it.
  let typed = false;
  $('cal-rolls').addEventListener('input', () => { typed = true; });
  $('cal-form').addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  function follow() {
    if (!typed) $('cal-rolls').value = WI.state.rollId || '';
  }
  on('tab', ({ tab }) => {
    if (tab !== 'calibrate') return;
    follow();
    load();
  });
  on('rollchange', () => {
    if (WI.state.tab !== 'calibrate' || typed) return;
    follow();
    load();
  });
})();
