// The dashboard's script, run in the browser: bundled by scripts/build.mjs into dist/ui-client.js, inlined by page.ts.

interface Row {
  id: string;
  seq?: number;
  name: string;
  status: string;
  label: string;
  final: boolean;
  why?: string;
  array?: { name: string; index: number; size: number; run?: string };
  queue?: string;
  createdAt: string;
  startedAt?: string;
  elapsedMs: number | null;
  elapsed: string;
  exit: string;
  mem: string;
}
interface Snapshot {
  jobs: Row[];
  /** Each listed array's latest run, counted over all of its elements (the list holds only the newest finished jobs). */
  arrays: Record<string, { run?: string; size: number; counts: Record<string, number> }>;
  queues: Array<{ name: string; slots: number; paused: boolean; running: number; waiting: number }>;
  hidden: number;
  total: number;
  running: number;
  waiting: number;
  failed: number;
}
interface Sample {
  t: number;
  mem: number;
  cpu: number;
  /** With a --mem-high: times throttled so far. */
  high?: number;
}
interface Detail extends Row {
  command: string;
  details: Array<[string, string]>;
  log: string;
  memNow: number | null;
  memPeak: number | null;
  memLimit: number | null;
  memHigh: number | null;
  samples: Sample[];
}
type Item = { kind: 'job'; row: Row; el: boolean } | { kind: 'group'; key: string; name: string; rows: Row[]; all: Row[] };

/** Rows shown at first and added by each "show more": 1,000 queued jobs page instead of drawing at once. */
const PAGE_ROWS = 200;
const BAD = new Set(['failed', 'killed', 'timeout', 'oom', 'lost', 'failed-to-start']);
const GROUPS: Record<string, (s: string) => boolean> = {
  all: () => true,
  running: (s) => s === 'running' || s === 'starting',
  waiting: (s) => s === 'queued' || s === 'paused',
  failed: (s) => BAD.has(s),
  done: (s) => s === 'succeeded' || s === 'cancelled' || s === 'skipped',
};

// The key is kept for this tab and taken out of the address bar (and so out of history and screenshots).
const token = new URLSearchParams(location.search).get('token') ?? sessionStorage.getItem('jobq-token') ?? '';
sessionStorage.setItem('jobq-token', token);
if (location.search.includes('token=')) history.replaceState(null, '', location.pathname);
const api = (p: string) => `${p}${p.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T | null;
const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

const ui = {
  snap: undefined as Snapshot | undefined,
  group: 'all',
  filter: '',
  open: new Set<string>(),
  limit: PAGE_ROWS,
  items: [] as Item[],
  /** The highlighted list entry: `job:ID` or `group:NAME`. */
  cursor: undefined as string | undefined,
  selected: undefined as string | undefined,
  detail: undefined as Detail | undefined,
  logSource: undefined as EventSource | undefined,
  refresh: undefined as number | undefined,
  /** An action is on its way: no second one until it is answered (a double click must not act on a job nobody confirmed). */
  pending: false,
  /** Settles the open confirm dialog's question. */
  answer: undefined as ((yes: boolean) => void) | undefined,
};

// ---- formatting -------------------------------------------------------------------------------------------------

const pad = (n: number) => String(n).padStart(2, '0');
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** A 24-hour clock time, with the date when it is not today. */
function clock(iso?: string): string {
  if (!iso) return '';
  const d = new Date(iso);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return d.toDateString() === new Date().toDateString() ? hm : `${MONTHS[d.getMonth()]} ${d.getDate()} ${hm}`;
}
function size(b: number): string {
  if (b >= 1024 ** 3) return `${(b / 1024 ** 3).toFixed(b >= 10 * 1024 ** 3 ? 0 : 1)}G`;
  if (b >= 1024 ** 2) return `${Math.round(b / 1024 ** 2)}M`;
  if (b >= 1024) return `${Math.round(b / 1024)}K`;
  return b ? `${b} B` : '0';
}
function dur(sec: number, fine = false): string {
  if (fine && sec < 60) return `${sec.toFixed(sec < 10 ? 1 : 0)}s`;
  const s = Math.round(sec);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${pad(s % 60)}s` : ''}`;
  return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
}
const who = (r: Row) => `${r.name}${r.seq !== undefined ? ` #${r.seq}` : ''}`;

// ---- the list ---------------------------------------------------------------------------------------------------

function matches(r: Row): boolean {
  if (!GROUPS[ui.group]!(r.status)) return false;
  const f = ui.filter.trim().toLowerCase();
  if (!f) return true;
  return r.name.toLowerCase().includes(f) || (r.seq !== undefined && `#${r.seq}` === f.replace(/^(\d)/, '#$1')) || !!r.array?.name.toLowerCase().includes(f);
}

/** The list's entries: jobs, arrays as one entry each (their elements below it when opened), filtered. */
function buildItems(s: Snapshot): Item[] {
  const out: Item[] = [];
  const groups = new Map<string, Item & { kind: 'group' }>();
  for (const r of s.jobs) {
    if (!r.array) {
      if (matches(r)) out.push({ kind: 'job', row: r, el: false });
      continue;
    }
    // One group per run of the array (two arrays of one name, --allow-duplicate, stay apart; a rerun joins its run).
    const key = `${r.array.name}@${r.array.run ?? ''}`;
    let g = groups.get(key);
    if (!g) {
      g = { kind: 'group', key, name: r.array.name, rows: [], all: [] };
      groups.set(key, g);
      out.push(g);
    }
    g.all.push(r);
    if (matches(r)) g.rows.push(r);
  }
  const flat: Item[] = [];
  for (const it of out) {
    if (it.kind === 'job') flat.push(it);
    else if (it.rows.length) {
      flat.push(it);
      if (ui.open.has(it.key)) for (const r of [...it.rows].sort((a, b) => a.array!.index - b.array!.index)) flat.push({ kind: 'job', row: r, el: true });
    }
  }
  return flat;
}

/** An array's progress: the server's count of all its elements (latest run), else the newest of each element listed. */
function progress(all: Row[]) {
  const a = all[0]!.array!;
  const whole = ui.snap?.arrays?.[a.name];
  const byStatus: Record<string, number> = {};
  if (whole && whole.run === a.run) Object.assign(byStatus, whole.counts);
  else {
    const latest = new Map<number, Row>();
    for (const r of all) {
      const had = latest.get(r.array!.index);
      if (!had || had.createdAt < r.createdAt) latest.set(r.array!.index, r);
    }
    for (const r of latest.values()) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  }
  const size = whole && whole.run === a.run ? whole.size : a.size;
  const n = { ok: 0, run: 0, bad: 0, wait: 0, warn: 0 };
  for (const [st, k] of Object.entries(byStatus)) {
    if (st === 'succeeded') n.ok += k;
    else if (GROUPS.running!(st)) n.run += k;
    else if (BAD.has(st)) n.bad += k;
    else if (GROUPS.waiting!(st)) n.wait += k;
    else n.warn += k;
  }
  const words = [`${n.ok}/${size} done`, n.run && `${n.run} running`, n.bad && `${n.bad} failed`, n.wait && `${n.wait} waiting`].filter(Boolean).join(' · ');
  const bar = (Object.keys(n) as Array<keyof typeof n>)
    .filter((k) => n[k])
    .map((k) => `<span class="b-${k}" style="width:${((n[k] / size) * 100).toFixed(1)}%"></span>`)
    .join('');
  return { words, bar, size, worst: n.bad ? 'failed' : n.run ? 'running' : n.wait ? 'queued' : 'succeeded' };
}

function jobRow(r: Row, el: boolean): string {
  const key = `job:${r.id}`;
  const name = el ? `[${r.array!.index}] ${r.name}` : r.name;
  return (
    `<tr data-key="${esc(key)}" data-id="${esc(r.id)}" tabindex="-1" class="${el ? 'el' : ''}${ui.selected === r.id ? ' sel' : ''}">` +
    `<td class="c-name"><div class="nm">${esc(name)}${r.seq !== undefined ? ` <span class="dim">#${r.seq}</span>` : ''}</div>` +
    `${r.why ? `<div class="why" title="${esc(r.why)}">${esc(r.why)}</div>` : ''}</td>` +
    `<td class="c-state"><div class="${esc(r.status)}" title="${esc(r.label)}">${esc(r.label)}</div></td>` +
    `<td class="c-el num">${esc(r.elapsed)}</td><td class="c-mem num">${esc(r.mem)}</td>` +
    `<td class="c-start num" title="${esc(r.startedAt ?? '')}">${esc(clock(r.startedAt))}</td></tr>`
  );
}

function groupRow(it: Item & { kind: 'group' }): string {
  const p = progress(it.all);
  const open = ui.open.has(it.key);
  return (
    `<tr data-key="${esc(`group:${it.key}`)}" data-group="${esc(it.key)}" data-name="${esc(it.name)}" tabindex="-1" aria-expanded="${open}" class="group${open ? ' open' : ''}">` +
    `<td class="c-name"><div class="nm">${esc(it.name)} <span class="dim">array of ${p.size}</span></div><div class="bar">${p.bar}</div></td>` +
    `<td class="c-state"><div class="${p.worst}" title="${esc(p.words)}">${esc(p.words)}</div></td>` +
    `<td class="c-el num"></td><td class="c-mem num"></td><td class="c-start num">${esc(clock(it.all.map((r) => r.startedAt ?? '').sort()[0]))}</td></tr>`
  );
}

function renderStates(s: Snapshot): void {
  const done = s.jobs.filter((r) => GROUPS.done!(r.status)).length;
  const counts: Record<string, number> = { all: s.jobs.length, running: s.running, waiting: s.waiting, failed: s.failed, done };
  const names: Record<string, string> = { all: 'All', running: 'Running', waiting: 'Waiting', failed: 'Failed', done: 'Done' };
  $('states')!.innerHTML = Object.keys(GROUPS)
    .map((g) => `<button data-group="${g}" aria-pressed="${ui.group === g}">${names[g]} ${counts[g]}</button>`)
    .join('');
  $('queues')!.innerHTML = s.queues
    .map(
      (q) =>
        `<span title="queue ${esc(q.name)}">queue <b>${esc(q.name)}</b>: ${q.running}/${q.slots} slots${q.waiting ? `, ${q.waiting} waiting` : ''}${q.paused ? ' (paused)' : ''}</span>`,
    )
    .join('');
}

function renderList(): void {
  const s = ui.snap;
  if (!s) return;
  renderStates(s);
  ui.items = buildItems(s);
  const shown = ui.items.slice(0, ui.limit);
  const hadFocus = !!document.activeElement?.closest('#jobs');
  $('jobs')!.innerHTML = shown.map((it) => (it.kind === 'job' ? jobRow(it.row, it.el) : groupRow(it))).join('');
  const more: string[] = [];
  if (ui.items.length > shown.length)
    more.push(
      `<span>${ui.items.length - shown.length} more</span><button id="moreRows">Show ${Math.min(PAGE_ROWS, ui.items.length - shown.length)} more</button>`,
    );
  if (!ui.items.length) more.push(`<span>${s.jobs.length ? 'No job matches this filter.' : 'No jobs yet: jobq run NAME -- CMD starts one.'}</span>`);
  if (s.hidden) more.push(`<span>${s.hidden} older finished jobs not listed (jobq status --all)</span>`);
  $('more')!.innerHTML = more.join('');
  const cur = ui.cursor ? document.querySelector<HTMLElement>(`#jobs tr[data-key="${CSS.escape(ui.cursor)}"]`) : null;
  cur?.classList.add('sel');
  // Redrawn every second while jobs run: the keyboard's place in the list survives it.
  if (hadFocus) cur?.focus({ preventScroll: true });
  // The open job's headline follows the list between its own refreshes.
  const r = s.jobs.find((j) => j.id === ui.selected);
  if (r && ui.detail) headline(r);
}

// ---- one job ----------------------------------------------------------------------------------------------------

function headline(r: Row): void {
  const st = $('jobState');
  if (st) {
    st.textContent = r.label;
    st.className = r.status;
  }
  const why = $('jobWhy');
  if (why) why.textContent = r.why ?? '';
  buttons(r);
}

function buttons(r: { status: string; final: boolean }): void {
  const c = $<HTMLButtonElement>('cancel');
  if (c) c.disabled = r.final || ui.pending;
  const re = $<HTMLButtonElement>('restart');
  if (re) re.disabled = ui.pending;
  const p = $<HTMLButtonElement>('pause');
  if (p) {
    p.disabled = ui.pending || !(r.status === 'running' || r.status === 'paused');
    p.textContent = r.status === 'paused' ? 'Resume' : 'Pause';
  }
}

async function select(id: string, opts: { keepResult?: boolean } = {}): Promise<void> {
  ui.selected = id;
  ui.cursor = `job:${id}`;
  for (const tr of document.querySelectorAll<HTMLElement>('#jobs tr')) tr.classList.toggle('sel', tr.dataset.key === ui.cursor);
  const r = await fetch(api(`/api/jobs/${encodeURIComponent(id)}`));
  if (!r.ok || ui.selected !== id) return;
  const d = (await r.json()) as Detail;
  const result = opts.keepResult ? ($('actionResult')?.textContent ?? '') : '';
  ui.detail = d;
  $('detail')!.innerHTML =
    `<div class="dhead"><h2 id="jobTitle">${esc(d.name)}${d.seq !== undefined ? ` <span class="dim">#${d.seq}</span>` : ''}</h2><span id="jobState" class="${esc(d.status)}">${esc(d.label)}</span></div>` +
    `<p id="jobWhy"></p>` +
    `<div class="cmd" title="the command, quoted as a shell would take it">${esc(d.command)}</div>` +
    `<div class="actions"><button id="cancel" class="danger">Cancel</button><button id="pause">Pause</button><button id="restart">Restart</button></div>` +
    `<p id="actionResult" role="status"></p>` +
    `<h3>Memory</h3><div class="chart" id="memchartBox"></div><div class="legend" id="memLegend"></div>` +
    `<h3>CPU</h3><div class="chart" id="cpuchartBox"></div>` +
    `<h3>Log</h3><div class="logbar"><a id="fullLog" target="_blank" rel="noopener noreferrer">whole log</a><a id="download">download</a>` +
    `<input id="search" type="search" placeholder="Search the whole log" aria-label="search the whole log"><button id="searchGo">Search</button></div>` +
    `<p id="hitsNote" class="dim"></p><ol id="hits"></ol><pre id="log"></pre>` +
    `<h3>Details</h3><dl>${d.details.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`;
  $('actionResult')!.textContent = result;
  headline(d);
  const base = `/api/jobs/${encodeURIComponent(id)}/log/full`;
  $<HTMLAnchorElement>('fullLog')!.href = api(base);
  $<HTMLAnchorElement>('download')!.href = api(`${base}?download=1`);
  $('cancel')!.onclick = () => void action('cancel');
  $('pause')!.onclick = () => void action(ui.detail?.status === 'paused' ? 'resume' : 'pause');
  $('restart')!.onclick = () => void action('restart');
  $('searchGo')!.onclick = () => void search();
  $('search')!.onkeydown = (e) => {
    if (e.key === 'Enter') void search();
  };
  charts(d);
  follow(id);
  clearInterval(ui.refresh);
  // New samples every few seconds while it lives; a finished job's chart does not change.
  if (!d.final) ui.refresh = window.setInterval(() => void refreshCharts(id), 4000);
  if (matchMedia('(max-width: 999px)').matches && !opts.keepResult) $('detail')!.scrollIntoView({ block: 'start' });
}

async function refreshCharts(id: string): Promise<void> {
  if (ui.selected !== id || !ui.detail) return;
  const r = await fetch(api(`/api/jobs/${encodeURIComponent(id)}`)).catch(() => undefined);
  if (!r?.ok || ui.selected !== id) return;
  const d = (await r.json()) as Detail;
  ui.detail = d;
  charts(d);
  if (d.final) clearInterval(ui.refresh);
}

function follow(id: string): void {
  ui.logSource?.close();
  const src = new EventSource(api(`/api/jobs/${encodeURIComponent(id)}/log`));
  ui.logSource = src;
  src.addEventListener('log', (e) => {
    const pre = $('log');
    if (!pre) return;
    const { text, size: bytes } = JSON.parse((e as MessageEvent).data) as { text: string; size: number };
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = text;
    if (atEnd) pre.scrollTop = pre.scrollHeight;
    const full = $('fullLog');
    if (full) full.textContent = `whole log (${size(bytes)})`;
  });
  src.addEventListener('error', (e) => {
    const data = (e as MessageEvent).data;
    if (!data) return;
    // The job is gone (jobq rm) or its log unreadable: said once, and nothing more is asked of it.
    const why = $('jobWhy');
    if (why) why.textContent = JSON.parse(data).error;
    if (/no job|not found/i.test(JSON.parse(data).error)) {
      src.close();
      for (const b of ['cancel', 'pause', 'restart']) $<HTMLButtonElement>(b)?.setAttribute('disabled', '');
    }
  });
  src.addEventListener('state', (e) => {
    const s = JSON.parse((e as MessageEvent).data) as { status: string; label: string; final: boolean };
    if (ui.detail) Object.assign(ui.detail, { status: s.status, label: s.label, final: s.final });
    const el = $('jobState');
    if (el) {
      el.textContent = s.label;
      el.className = s.status;
    }
    buttons(s);
  });
}

async function search(): Promise<void> {
  const id = ui.selected;
  const q = $<HTMLInputElement>('search')?.value ?? '';
  if (!id || !q) return;
  $('hitsNote')!.textContent = 'searching…';
  const r = await fetch(api(`/api/jobs/${encodeURIComponent(id)}/log/search?q=${encodeURIComponent(q)}`));
  const body = await r.json();
  if (ui.selected !== id) return;
  if (!r.ok) {
    $('hitsNote')!.textContent = `search failed: ${body.error}`;
    return;
  }
  const { matches: hits, more, lines } = body as { matches: Array<{ line: number; text: string }>; more: number; lines: number };
  $('hitsNote')!.textContent = `${hits.length + more} of ${lines} lines match${more ? ` (the first ${hits.length} shown)` : ''}`;
  // Split the raw text on the raw query, then escape each piece: a search for `gt` or `amp` marks text, not entities.
  const re = new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi');
  const mark = (t: string) => {
    let out = '';
    let at = 0;
    for (const m of t.matchAll(re)) {
      out += `${esc(t.slice(at, m.index))}<mark>${esc(m[0])}</mark>`;
      at = m.index + m[0].length;
    }
    return out + esc(t.slice(at));
  };
  $('hits')!.innerHTML = hits.map((h) => `<li><span>${h.line}</span><span>${mark(h.text)}</span></li>`).join('');
}

// ---- actions ----------------------------------------------------------------------------------------------------

/** Asks before an action: the dialog names the job and how long it has run; Escape or "Keep it" says no. */
function confirmAction(text: string, yes: string): Promise<boolean> {
  const d = $<HTMLDialogElement>('confirm')!;
  $('confirmText')!.textContent = text;
  $('confirmYes')!.textContent = yes;
  answer(false);
  d.returnValue = '';
  d.showModal();
  return new Promise((resolve) => {
    ui.answer = resolve;
  });
}

/** Settles the question once; the buttons answer in their click, not in the close event a task later, where a
 * second click could land first and ask again. */
function answer(yes: boolean): void {
  const a = ui.answer;
  ui.answer = undefined;
  a?.(yes);
}

function question(what: string, d: Detail): [string, string] {
  const ran = d.elapsed ? ` It has run for ${d.elapsed}.` : '';
  switch (what) {
    case 'cancel':
      return [`Cancel ${who(d)}?${ran} Every process of the job gets TERM, then KILL after its grace.`, 'Cancel the job'];
    case 'pause':
      return [`Pause ${who(d)}?${ran} Its processes stop where they are until you resume it.`, 'Pause'];
    case 'resume':
      return [`Resume ${who(d)}? It was paused${d.elapsed ? ` after ${d.elapsed}` : ''}.`, 'Resume'];
    default:
      return d.final
        ? [`Run ${who(d)} again, with the same command, directory and settings?`, 'Restart']
        : [`Restart ${who(d)}? It is ${d.label}${d.elapsed ? ` (${d.elapsed})` : ''}: it will be cancelled first, then run again.`, 'Cancel and restart'];
  }
}

async function action(what: string): Promise<void> {
  const d = ui.detail;
  if (!d || ui.pending) return;
  // Held from the question on: a click while the dialog is open or closing starts nothing.
  ui.pending = true;
  try {
    const [text, yes] = question(what, d);
    if (!(await confirmAction(text, yes)) || ui.detail?.id !== d.id) return;
    buttons(d);
    await send(what, d);
  } finally {
    ui.pending = false;
    if (ui.detail) buttons(ui.detail);
  }
}

async function send(what: string, d: Detail): Promise<void> {
  const id = d.id;
  const doing: Record<string, string> = { cancel: 'Cancelling', pause: 'Pausing', resume: 'Resuming', restart: 'Restarting' };
  const res0 = $('actionResult');
  if (res0) res0.textContent = `${doing[what]} ${who(d)}…`;
  const r = await fetch(api(`/api/jobs/${encodeURIComponent(id)}/${what}`), { method: 'POST', headers: { 'X-Jobq-Token': token } });
  const body = (await r.json()) as { message?: string; id?: string; error?: string };
  const shown = r.ok && body.id ? body.id : id;
  const line = r.ok ? (body.message ?? 'Done.') : `Could not ${what} ${who(d)}: ${body.error}`;
  // The panel is redrawn first (for the job a restart made), then the result is said once, on the job it is about.
  if (ui.selected === id) {
    const res = $('actionResult');
    if (res) res.textContent = line;
    await select(shown, { keepResult: true });
  }
}

// ---- charts -----------------------------------------------------------------------------------------------------

interface Series {
  box: string;
  id: string;
  label: string;
  points: Array<[number, number]>;
  fmt: (v: number) => string;
  lines?: Array<{ cls: string; at: number; color: string }>;
  /** Spans of time (from, to) drawn shaded: where the job was throttled above its --mem-high. */
  bands?: Array<[number, number]>;
  floorTop: number;
}

function charts(d: Detail): void {
  const s = d.samples;
  const mem: Array<[number, number]> = s.map((x) => [x.t, x.mem]);
  const cpu: Array<[number, number]> = [];
  for (let i = 1; i < s.length; i++) {
    const dt = s[i]!.t - s[i - 1]!.t;
    // A counter that went back (a new attempt's cgroup) is no measure: that point is left out, not drawn as 0%.
    const used = s[i]!.cpu - s[i - 1]!.cpu;
    if (dt > 0 && used >= 0) cpu.push([s[i]!.t, used / (dt * 10)]);
  }
  const lines = [
    ...(d.memLimit ? [{ cls: 'limit', at: d.memLimit, color: '#cf222e' }] : []),
    ...(d.memHigh ? [{ cls: 'high', at: d.memHigh, color: '#9a6700' }] : []),
  ];
  const bands: Array<[number, number]> = [];
  for (let i = 1; i < s.length; i++) {
    const [a, b] = [s[i - 1]!, s[i]!];
    if (a.high !== undefined && b.high !== undefined && b.high > a.high) bands.push([a.t, b.t]);
  }
  draw({ box: 'memchartBox', id: 'memchart', label: 'memory over time', points: mem, fmt: size, lines, bands, floorTop: 1024 * 1024 });
  draw({ box: 'cpuchartBox', id: 'cpuchart', label: 'CPU over time', points: cpu, fmt: (v) => `${Math.round(v)}%`, floorTop: 95 });
  const now = d.final ? null : (d.memNow ?? s[s.length - 1]?.mem ?? null);
  const peak = Math.max(d.memPeak ?? 0, now ?? 0, ...s.map((x) => x.mem));
  const legend = [
    now !== null ? `now <b>${size(now)}</b>` : '',
    peak ? `peak <b>${size(peak)}</b>` : '',
    d.memLimit ? `<span style="color:#cf222e">- - limit <b>${size(d.memLimit)}</b></span>` : '',
    d.memHigh ? `<span style="color:#9a6700">- - high <b>${size(d.memHigh)}</b></span>` : '',
    bands.length ? `<span style="color:#9a6700">▮ throttled <b>${dur(bands.reduce((n, [a, b]) => n + b - a, 0))}</b></span>` : '',
    s.length > 1 ? `${s.length} samples, time since start` : '',
  ];
  $('memLegend')!.innerHTML = legend.filter(Boolean).join('');
}

/** A line chart in SVG, drawn at the box's real width (text stays 11 px at any width): axes, ticks, limit lines, hover. */
function draw(c: Series): void {
  const box = $(c.box);
  if (!box) return;
  if (c.points.length < 2) {
    const few = c.points.length ? 'Too few samples to draw' : 'No samples';
    box.innerHTML = `<p class="dim">${ui.detail?.final ? `${few}: the job ended soon after it started.` : `${few} yet: one is taken every few seconds while the job runs.`}</p>`;
    return;
  }
  const W = Math.max(box.clientWidth, 200);
  const H = 160;
  const L = 48;
  const B = 20;
  const T = 8;
  const R = 10;
  const top = niceTop(Math.max(c.floorTop, ...c.points.map((p) => p[1]), ...(c.lines ?? []).map((l) => l.at)) * 1.05);
  const t0 = c.points[0]![0];
  const t1 = Math.max(c.points[c.points.length - 1]![0], t0 + 1);
  const x = (t: number) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v: number) => T + (1 - v / top) * (H - T - B);
  let svg = `<svg id="${c.id}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${c.label}">`;
  for (const f of [0, 0.5, 1]) {
    const yy = y(top * f);
    svg += `<line x1="${L}" x2="${W - R}" y1="${yy}" y2="${yy}" stroke="#eaeef2"/><text class="ytick" x="${L - 6}" y="${yy + 4}" text-anchor="end">${esc(c.fmt(top * f))}</text>`;
  }
  const ticks = W < 360 ? 3 : 5;
  for (let i = 0; i < ticks; i++) {
    const t = t0 + ((t1 - t0) * i) / (ticks - 1);
    const anchor = i === 0 ? 'start' : i === ticks - 1 ? 'end' : 'middle';
    // A short run's ticks a fraction of a second apart: tenths, so no two read the same.
    svg += `<text class="xtick" x="${x(t)}" y="${H - 5}" text-anchor="${anchor}">${dur(t, t1 - t0 < 20)}</text>`;
  }
  for (const [a, b] of c.bands ?? [])
    svg += `<rect class="throttled" x="${x(a)}" y="${T}" width="${Math.max(1, x(b) - x(a))}" height="${H - T - B}" fill="#fff1b8"/>`;
  for (const l of c.lines ?? [])
    svg += `<line class="${l.cls}" x1="${L}" x2="${W - R}" y1="${y(l.at)}" y2="${y(l.at)}" stroke="${l.color}" stroke-dasharray="5 4"/>`;
  const pts = c.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  svg += `<polyline fill="none" stroke="#0969da" stroke-width="1.6" points="${pts}"/>`;
  svg += `<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#8c959f"/><line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#8c959f"/>`;
  svg += `<g class="hover" visibility="hidden"><line y1="${T}" y2="${H - B}" stroke="#8c959f"/><circle r="3.5" fill="#0969da"/><rect rx="3" height="18" fill="#1f2328"/><text class="tip" y="0" fill="#fff" style="fill:#fff"></text></g></svg>`;
  box.innerHTML = svg;
  const el = box.querySelector('svg')!;
  const hover = el.querySelector<SVGGElement>('g.hover')!;
  el.onmousemove = (e) => {
    const px = ((e.clientX - el.getBoundingClientRect().left) / el.getBoundingClientRect().width) * W;
    let best = c.points[0]!;
    for (const p of c.points) if (Math.abs(x(p[0]) - px) < Math.abs(x(best[0]) - px)) best = p;
    const bx = x(best[0]);
    const by = y(best[1]);
    hover.setAttribute('visibility', 'visible');
    hover.querySelector('line')!.setAttribute('x1', String(bx));
    hover.querySelector('line')!.setAttribute('x2', String(bx));
    hover.querySelector('circle')!.setAttribute('cx', String(bx));
    hover.querySelector('circle')!.setAttribute('cy', String(by));
    const tip = hover.querySelector<SVGTextElement>('text')!;
    tip.textContent = `${dur(best[0])}: ${c.fmt(best[1])}`;
    const tw = tip.getComputedTextLength() + 10;
    const tx = Math.min(Math.max(bx - tw / 2, L), W - R - tw);
    const ty = Math.max(by - 26, T);
    hover.querySelector('rect')!.setAttribute('x', String(tx));
    hover.querySelector('rect')!.setAttribute('y', String(ty));
    hover.querySelector('rect')!.setAttribute('width', String(tw));
    tip.setAttribute('x', String(tx + 5));
    tip.setAttribute('y', String(ty + 13));
  };
  el.onmouseleave = () => hover.setAttribute('visibility', 'hidden');
}

/** A round top for an axis: 1, 2 or 5 times a power of ten (of the unit's scale for sizes). */
function niceTop(v: number): number {
  const unit = v >= 1024 ** 3 ? 1024 ** 3 : v >= 1024 ** 2 ? 1024 ** 2 : 1;
  const n = v / unit;
  const p = 10 ** Math.floor(Math.log10(n));
  const m = [1, 2, 2.5, 5, 10].find((k) => k * p >= n)!;
  return m * p * unit;
}

// ---- wiring -----------------------------------------------------------------------------------------------------

function move(step: number): void {
  const rows = [...document.querySelectorAll<HTMLElement>('#jobs tr')];
  if (!rows.length) return;
  const at = rows.findIndex((tr) => tr.dataset.key === ui.cursor);
  const next = rows[Math.max(0, Math.min(rows.length - 1, at < 0 ? 0 : at + step))]!;
  ui.cursor = next.dataset.key;
  for (const tr of rows) tr.classList.toggle('sel', tr === next);
  next.focus();
  if (next.dataset.id) void select(next.dataset.id);
}

function toggleGroup(name: string): void {
  if (ui.open.has(name)) ui.open.delete(name);
  else ui.open.add(name);
  ui.cursor = `group:${name}`;
  renderList();
}

function wire(): void {
  $('jobs')!.addEventListener('click', (e) => {
    const tr = (e.target as HTMLElement).closest('tr');
    if (!tr) return;
    if (tr.dataset.group) toggleGroup(tr.dataset.group);
    else if (tr.dataset.id) void select(tr.dataset.id);
  });
  $('states')!.addEventListener('click', (e) => {
    const b = (e.target as HTMLElement).closest('button');
    if (!b?.dataset.group) return;
    ui.group = b.dataset.group;
    ui.limit = PAGE_ROWS;
    renderList();
  });
  $('more')!.addEventListener('click', (e) => {
    if ((e.target as HTMLElement).id !== 'moreRows') return;
    ui.limit += PAGE_ROWS;
    renderList();
  });
  const filter = $<HTMLInputElement>('filter')!;
  filter.addEventListener('input', () => {
    ui.filter = filter.value;
    ui.limit = PAGE_ROWS;
    renderList();
  });
  const dialog = $<HTMLDialogElement>('confirm')!;
  $('confirmYes')!.onclick = () => {
    dialog.close('yes');
    answer(true);
  };
  $('confirmNo')!.onclick = () => {
    dialog.close('no');
    answer(false);
  };
  // Escape; a close queued before the dialog was opened again is not its answer.
  dialog.addEventListener('close', () => !dialog.open && answer(false));
  document.addEventListener('keydown', (e) => {
    if (dialog.open || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target as HTMLElement;
    // A focused button or link takes Enter and Space itself.
    if (t.tagName === 'BUTTON' || t.tagName === 'A') return;
    if (t.tagName === 'INPUT') {
      if (e.key === 'Escape' && t === filter) {
        filter.value = '';
        ui.filter = '';
        renderList();
        filter.blur();
      }
      return;
    }
    if (e.key === '/') {
      e.preventDefault();
      filter.focus();
    } else if (e.key === 'ArrowDown' || e.key === 'j') {
      e.preventDefault();
      move(1);
    } else if (e.key === 'ArrowUp' || e.key === 'k') {
      e.preventDefault();
      move(-1);
    } else if ((e.key === 'Enter' || e.key === 'ArrowRight' || e.key === 'ArrowLeft') && ui.cursor?.startsWith('group:')) {
      const key = ui.cursor.slice('group:'.length);
      if (e.key === 'Enter' || (e.key === 'ArrowRight') !== ui.open.has(key)) toggleGroup(key);
    }
  });
  let width = window.innerWidth;
  window.addEventListener('resize', () => {
    if (window.innerWidth === width || !ui.detail) return;
    width = window.innerWidth;
    charts(ui.detail);
  });
  const events = new EventSource(api('/api/events'));
  events.addEventListener('jobs', (e) => {
    ui.snap = JSON.parse((e as MessageEvent).data) as Snapshot;
    renderList();
  });
  events.onopen = () => {
    $('conn')!.textContent = 'live';
  };
  events.onerror = () => {
    $('conn')!.textContent = 'reconnecting…';
  };
}

wire();
