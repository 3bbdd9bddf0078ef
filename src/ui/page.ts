// The dashboard page: one self-contained HTML document (no external scripts, styles or fonts); its script is
// src/ui/client.ts, bundled by scripts/build.mjs into dist/ui-client.js and inlined here under the request's nonce.
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../package-root.js';

/** The icon: served without the token (it is no secret), so a browser's own request for it is no 403. */
export const FAVICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#0969da"/><path d="M8 10h16M8 16h11M8 22h7" stroke="#fff" stroke-width="3" stroke-linecap="round"/></svg>';

const CSS = `
  :root { --fg: #1f2328; --dim: #59636e; --bg: #fff; --panel: #f6f8fa; --line: #d0d7de; --ok: #1a7f37; --run: #0969da; --warn: #9a6700; --bad: #cf222e; --wait: #8250df; }
  * { box-sizing: border-box; }
  html, body { margin: 0; }
  body { font: 14px/1.45 ui-sans-serif, system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  button, input { font: inherit; }
  .dim { color: var(--dim); }
  header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; padding: .5rem 1rem; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 1.1rem; margin: 0; }
  .brand { display: flex; gap: .6rem; align-items: baseline; }
  #states { display: flex; flex-wrap: wrap; gap: .3rem; }
  #states button { border: 1px solid var(--line); background: var(--bg); border-radius: 999px; padding: .1rem .65rem; cursor: pointer; }
  #states button[aria-pressed="true"] { background: var(--fg); color: var(--bg); border-color: var(--fg); }
  #filter { flex: 1 1 12rem; min-width: 0; max-width: 22rem; padding: .25rem .5rem; border: 1px solid var(--line); border-radius: 6px; }
  #queues { display: flex; flex-wrap: wrap; gap: .3rem 1rem; padding: .35rem 1rem; color: var(--dim); border-bottom: 1px solid var(--line); }
  #queues:empty { display: none; }
  main { display: grid; grid-template-columns: minmax(0, 1fr); gap: 1rem; padding: .75rem 1rem; }
  @media (min-width: 1000px) {
    main { grid-template-columns: minmax(0, 1fr) minmax(0, 42%); }
    #detail { position: sticky; top: .5rem; align-self: start; max-height: calc(100vh - 1rem); overflow-y: auto; }
  }
  #list { container-type: inline-size; min-width: 0; }
  table { border-collapse: collapse; width: 100%; table-layout: fixed; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: .3rem .45rem; border-bottom: 1px solid var(--line); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; vertical-align: top; }
  th { font-weight: 600; color: var(--dim); font-size: 12px; }
  th.c-state { width: 10.5rem; } th.c-el { width: 5.6rem; } th.c-mem { width: 5rem; } th.c-start { width: 6.6rem; }
  .num { text-align: right; }
  @container (max-width: 620px) { .c-start { display: none; } th.c-state { width: 8.5rem; } }
  @container (max-width: 430px) { .c-mem { display: none; } th.c-state { width: 6.8rem; } th.c-el { width: 5rem; } }
  td > div { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .why { color: var(--dim); font-size: 12px; }
  tbody tr { cursor: pointer; }
  tbody tr:hover { background: var(--panel); }
  tbody tr.sel { background: #ddf4ff; }
  tbody tr:focus { outline: 2px solid var(--run); outline-offset: -2px; }
  tr.el td.c-name { padding-left: 1.6rem; }
  tr.group .nm::before { content: '▸ '; color: var(--dim); }
  tr.group.open .nm::before { content: '▾ '; }
  .bar { display: flex; height: 5px; margin-top: 4px; border-radius: 3px; overflow: hidden; background: var(--line); }
  .bar span { display: block; height: 100%; }
  .bar .b-ok { background: var(--ok); } .bar .b-run { background: var(--run); } .bar .b-bad { background: var(--bad); } .bar .b-wait { background: var(--wait); } .bar .b-warn { background: var(--warn); }
  .succeeded { color: var(--ok); } .running, .starting { color: var(--run); } .queued, .paused { color: var(--wait); }
  .cancelled, .skipped { color: var(--warn); } .failed, .killed, .timeout, .oom, .lost, .failed-to-start { color: var(--bad); }
  .more { display: flex; gap: 1rem; align-items: center; color: var(--dim); padding: .4rem .45rem; }
  .more:empty { display: none; }
  .more button, .actions button, .logbar button, dialog button { padding: .2rem .75rem; border: 1px solid var(--line); border-radius: 6px; background: var(--panel); cursor: pointer; }
  button:disabled { opacity: .5; cursor: default; }
  #detail { min-width: 0; }
  #detail h2 { font-size: 1.05rem; margin: 0; overflow-wrap: anywhere; }
  #detail h3 { font-size: 13px; margin: 1rem 0 .3rem; color: var(--dim); font-weight: 600; }
  .dhead { display: flex; flex-wrap: wrap; gap: .2rem .8rem; align-items: baseline; }
  #jobWhy { margin: .3rem 0 0; color: var(--dim); overflow-wrap: anywhere; }
  #jobWhy:empty { display: none; }
  .actions { display: flex; flex-wrap: wrap; gap: .4rem; margin-top: .6rem; }
  .actions button.danger, dialog button.danger { border-color: var(--bad); color: var(--bad); }
  #actionResult { margin: .4rem 0 0; }
  #actionResult:empty { display: none; }
  #detail dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .1rem .8rem; margin: .3rem 0 0; font-size: 13px; }
  #detail dt { color: var(--dim); }
  #detail dd { margin: 0; overflow-wrap: anywhere; }
  .cmd { font: 12px/1.4 ui-monospace, monospace; background: var(--panel); padding: .35rem .5rem; border-radius: 6px; white-space: pre-wrap; overflow-wrap: anywhere; margin: .5rem 0 0; max-height: 9rem; overflow-y: auto; }
  .chart svg { display: block; width: 100%; height: 160px; }
  .chart text { font-size: 11px; fill: var(--dim); }
  .legend { display: flex; flex-wrap: wrap; gap: .2rem 1rem; font-size: 12px; color: var(--dim); margin-top: .2rem; }
  .legend b { font-weight: 600; color: var(--fg); }
  .logbar { display: flex; flex-wrap: wrap; gap: .4rem .8rem; align-items: center; }
  .logbar input { flex: 1 1 10rem; min-width: 0; padding: .2rem .5rem; border: 1px solid var(--line); border-radius: 6px; }
  pre#log { background: #0d1117; color: #e6edf3; padding: .6rem; height: 22rem; overflow: auto; margin: .5rem 0 0; font: 12px/1.4 ui-monospace, monospace; white-space: pre-wrap; overflow-wrap: anywhere; }
  #hits { margin: .4rem 0 0; padding: 0; list-style: none; font: 12px/1.4 ui-monospace, monospace; max-height: 14rem; overflow-y: auto; }
  #hits li { display: flex; gap: .6rem; }
  #hits li span:first-child { color: var(--dim); min-width: 4rem; text-align: right; flex: none; }
  #hits li span:last-child { min-width: 0; overflow-wrap: anywhere; }
  #hitsNote:empty { display: none; }
  dialog { border: 1px solid var(--line); border-radius: 8px; max-width: min(30rem, calc(100vw - 2rem)); padding: 1rem 1.2rem; }
  dialog p { margin: 0 0 1rem; overflow-wrap: anywhere; }
  dialog .buttons { display: flex; flex-wrap: wrap; gap: .5rem; justify-content: flex-end; }
  .hint { margin: 0; }
`;

let client: string | undefined;
/** The bundled page script, read once: a missing build is said on the page, not as a crash. */
function clientScript(): string {
  if (client === undefined) {
    try {
      client = fs.readFileSync(path.join(packageRoot(), 'dist', 'ui-client.js'), 'utf8');
    } catch {
      client = "document.body.textContent = 'jobq ui: dist/ui-client.js is missing: run npm run build';";
    }
  }
  // A script element ends at the first `</script`: the bundle never holds one, but make sure.
  return client.replace(/<\/script/gi, '<\\/script');
}

/** The page, its script allowed by `nonce` (the CSP allows nothing else). */
export function pageHtml(nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>jobq</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<style>${CSS}</style>
</head>
<body>
<header>
  <div class="brand"><h1>jobq</h1><span class="dim" id="conn">connecting…</span></div>
  <div id="states" role="group" aria-label="show jobs by state"></div>
  <input id="filter" type="search" placeholder="Filter by name  ( / )" aria-label="filter by name" autocomplete="off">
</header>
<div id="queues" aria-label="queues"></div>
<main>
  <section id="list" aria-label="jobs">
    <table>
      <thead><tr><th class="c-name">name</th><th class="c-state">state</th><th class="c-el num">elapsed</th><th class="c-mem num">memory</th><th class="c-start num">started</th></tr></thead>
      <tbody id="jobs"></tbody>
    </table>
    <div class="more" id="more"></div>
  </section>
  <section id="detail" aria-live="polite"><p class="dim hint">Pick a job to see its log, memory and CPU over time, and to cancel, pause or restart it. Keys: ↑ ↓ (or j k) move, Enter opens an array, / filters.</p></section>
</main>
<dialog id="confirm" aria-labelledby="confirmText">
  <p id="confirmText"></p>
  <div class="buttons"><button id="confirmNo" autofocus>Keep it</button><button id="confirmYes" class="danger">Yes</button></div>
</dialog>
<script nonce="${nonce}">${clientScript()}</script>
</body>
</html>
`;
}

/** The answer to a page request without the key (or a wrong one): how to get the right URL again. */
export function keyPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>jobq: this dashboard needs its key</title><link rel="icon" href="/favicon.svg" type="image/svg+xml">
<style>body { font: 15px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; color: #1f2328; } code { background: #f6f8fa; padding: .1rem .3rem; border-radius: 4px; }</style></head>
<body>
<h1>This dashboard needs its key</h1>
<p>The address you opened has no token, or a wrong one (it changes each time the dashboard starts). Open the whole URL that <code>jobq ui</code> printed: it ends in <code>?token=…</code>.</p>
<p>To see that URL again:</p>
<ul>
<li>a dashboard started with <code>jobq ui --detach</code>: <code>jobq tail jobq-ui</code></li>
<li>one started in a terminal: it is the first line that terminal shows; or stop it (Ctrl-C) and run <code>jobq ui</code> again</li>
</ul>
</body></html>
`;
}
