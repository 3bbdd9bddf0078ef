// The dashboard page: one self-contained HTML document (no external scripts, styles or fonts).

/** The page; it reads its token from the URL and sends it with every request. */
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>jobq</title>
<style>
  :root { --fg: #1f2328; --dim: #6e7781; --bg: #fff; --line: #d0d7de; --ok: #1a7f37; --run: #0969da; --warn: #9a6700; --bad: #cf222e; --wait: #8250df; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 ui-sans-serif, system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; gap: 1rem; align-items: baseline; padding: .6rem 1rem; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 1.1rem; margin: 0; }
  header .dim { color: var(--dim); }
  main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1rem; padding: 1rem; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
  tbody tr { cursor: pointer; }
  tbody tr:hover, tbody tr.sel { background: #f6f8fa; }
  .succeeded { color: var(--ok); } .running, .starting { color: var(--run); } .queued, .paused { color: var(--wait); }
  .cancelled, .skipped { color: var(--warn); } .failed, .killed, .timeout, .oom, .lost, .failed-to-start { color: var(--bad); }
  #detail h2 { font-size: 1rem; margin: 0 0 .5rem; word-break: break-all; }
  #detail dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .8rem; margin: 0 0 .6rem; }
  #detail dt { color: var(--dim); }
  #detail dd { margin: 0; word-break: break-all; }
  pre#log { background: #0d1117; color: #e6edf3; padding: .6rem; height: 22rem; overflow: auto; margin: .5rem 0 0; font: 12px/1.4 ui-monospace, monospace; white-space: pre-wrap; }
  button { font: inherit; padding: .2rem .7rem; margin-right: .4rem; border: 1px solid var(--line); border-radius: 6px; background: #f6f8fa; cursor: pointer; }
  button:disabled { opacity: .5; cursor: default; }
  svg { width: 100%; height: 140px; border: 1px solid var(--line); }
  .more { color: var(--dim); padding: .4rem .5rem; }
</style>
</head>
<body>
<header><h1>jobq</h1><span class="dim" id="summary"></span><span class="dim" id="conn"></span></header>
<main>
  <section>
    <table>
      <thead><tr><th>name</th><th>id</th><th>state</th><th>pid</th><th>started</th><th>elapsed</th><th>exit</th><th>mem</th></tr></thead>
      <tbody id="jobs"></tbody>
    </table>
    <div class="more" id="more"></div>
  </section>
  <section id="detail"><p class="dim">Pick a job to see its log, its memory over time, and to cancel or restart it.</p></section>
</main>
<script>
(() => {
  const token = new URLSearchParams(location.search).get('token') || '';
  const api = (p) => p + (p.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  let selected = null, logSource = null;

  function renderJobs(data) {
    $('summary').textContent = data.running + ' running, ' + data.waiting + ' waiting, ' + data.total + ' jobs';
    $('jobs').innerHTML = data.jobs.map((j) =>
      '<tr data-id="' + esc(j.id) + '"' + (j.id === selected ? ' class="sel"' : '') + '><td>' + esc(j.name) + '</td><td>' + esc(j.id) + '</td><td class="' + esc(j.status) + '">' + esc(j.label) +
      '</td><td>' + esc(j.pid ?? '-') + '</td><td>' + esc(j.started) + '</td><td>' + esc(j.elapsed) + '</td><td>' + esc(j.exit) + '</td><td>' + esc(j.mem) + '</td></tr>').join('');
    $('more').textContent = data.hidden ? data.hidden + ' older jobs not shown' : '';
  }

  function chart(samples, limit) {
    if (!samples.length) return '<p class="dim">no memory samples (yet)</p>';
    const W = 600, H = 140, top = Math.max(limit || 0, ...samples.map((s) => s.mem)) || 1;
    const t0 = samples[0].t, span = Math.max(samples[samples.length - 1].t - t0, 1);
    const x = (t) => ((t - t0) / span) * (W - 60) + 55, y = (m) => H - 15 - (m / top) * (H - 25);
    const pts = samples.map((s) => x(s.t).toFixed(1) + ',' + y(s.mem).toFixed(1)).join(' ');
    const gib = (b) => b >= 1073741824 ? (b / 1073741824).toFixed(1) + 'G' : Math.round(b / 1048576) + 'M';
    let svg = '<svg id="memchart" viewBox="0 0 ' + W + ' ' + H + '" role="img" aria-label="memory over time">';
    svg += '<text x="2" y="14" font-size="11">' + gib(top) + '</text><text x="2" y="' + (H - 15) + '" font-size="11">0</text>';
    if (limit) svg += '<line class="limit" x1="55" x2="' + W + '" y1="' + y(limit) + '" y2="' + y(limit) + '" stroke="#cf222e" stroke-dasharray="4"/><text x="' + (W - 40) + '" y="' + (y(limit) - 3) + '" font-size="11" fill="#cf222e">limit</text>';
    svg += '<polyline fill="none" stroke="#0969da" stroke-width="1.5" points="' + pts + '"/></svg>';
    return svg;
  }

  async function post(id, what) {
    const r = await fetch(api('/api/jobs/' + encodeURIComponent(id) + '/' + what), { method: 'POST', headers: { 'X-Jobq-Token': token } });
    const body = await r.json();
    // The detail is redrawn first (for the job a restart made), so the result line is not wiped by it.
    const shown = r.ok && what === 'restart' && body.id ? body.id : id;
    if (r.ok) await select(shown).catch(() => undefined);
    // Unless the user picked another job meanwhile: the line belongs to the job it is about.
    if (selected === shown && $('actionResult')) $('actionResult').textContent = r.ok ? what + ': ' + (body.message || 'done') : 'error: ' + body.error;
  }

  async function select(id) {
    selected = id;
    for (const tr of document.querySelectorAll('#jobs tr')) tr.classList.toggle('sel', tr.dataset.id === id);
    const r = await fetch(api('/api/jobs/' + encodeURIComponent(id)));
    if (!r.ok) return;
    const j = await r.json();
    const live = !j.final;
    $('detail').innerHTML = '<h2>' + esc(j.id) + '</h2><dl>' +
      '<dt>state</dt><dd id="jobState" class="' + esc(j.status) + '">' + esc(j.label) + '</dd>' +
      '<dt>command</dt><dd>' + esc(j.command) + '</dd><dt>log</dt><dd>' + esc(j.log) + '</dd>' +
      (j.waiting ? '<dt>waiting</dt><dd>' + esc(j.waiting) + '</dd>' : '') + '</dl>' +
      '<button id="cancel"' + (live ? '' : ' disabled') + '>cancel</button><button id="restart">restart</button><span id="actionResult" class="dim"></span>' +
      chart(j.samples, j.memLimit) + '<pre id="log"></pre>';
    $('cancel').onclick = () => post(id, 'cancel');
    $('restart').onclick = () => post(id, 'restart');
    if (logSource) logSource.close();
    logSource = new EventSource(api('/api/jobs/' + encodeURIComponent(id) + '/log'));
    logSource.addEventListener('log', (e) => {
      const pre = $('log');
      if (!pre) return;
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent = JSON.parse(e.data).text;
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    });
    logSource.addEventListener('state', (e) => {
      const s = JSON.parse(e.data);
      const el = $('jobState');
      if (el) { el.textContent = s.label; el.className = s.status; }
      const c = $('cancel');
      if (c) c.disabled = s.final;
    });
  }

  $('jobs').addEventListener('click', (e) => { const tr = e.target.closest('tr'); if (tr) select(tr.dataset.id); });
  const events = new EventSource(api('/api/events'));
  events.addEventListener('jobs', (e) => renderJobs(JSON.parse(e.data)));
  events.onopen = () => { $('conn').textContent = 'live'; };
  events.onerror = () => { $('conn').textContent = 'reconnecting…'; };
})();
</script>
</body>
</html>
`;
