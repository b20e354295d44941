/**
 * The dashboard's stylesheet (inlined into the page: the CSP allows no external files).
 * Light and dark schemes, a grid that collapses to one column on narrow screens,
 * visible focus rings.
 */
export const dashboardStyle = String.raw`
:root {
  color-scheme: light dark;
  --bg: #f4f6f8; --panel: #ffffff; --text: #17202a; --muted: #56616d; --line: #d5dbe1; --grid: #e7ebef;
  --accent: #1f5fbf; --focus: #f2a900; --danger-bg: #fdecea; --danger: #a3261b; --warn-bg: #fff4d6; --warn: #7a5200;
  --s0: #1f6fd1; --s1: #c2410c;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #11161c; --panel: #1a2129; --text: #e6ebf0; --muted: #9aa7b4; --line: #2e3843; --grid: #26303a;
    --accent: #6ea8ff; --focus: #ffc940; --danger-bg: #3a1a17; --danger: #ff9b8f; --warn-bg: #3a2e12; --warn: #ffd27a;
    --s0: #6ea8ff; --s1: #ff9e5e;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; border-radius: 3px; }
.visually-hidden {
  position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
header.top {
  display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.25rem;
  padding: .75rem clamp(.75rem, 3vw, 2rem); background: var(--panel); border-bottom: 1px solid var(--line);
}
header.top h1 { font-size: 1.15rem; margin: 0; font-weight: 650; letter-spacing: .01em; }
header.top .meta { display: flex; flex-wrap: wrap; gap: .25rem 1rem; color: var(--muted); font-size: .9rem; margin-right: auto; }
header.top .meta .stale { color: var(--warn); font-weight: 600; }
header.top .meta code { color: var(--text); font-size: .85rem; overflow-wrap: anywhere; }
button {
  font: inherit; cursor: pointer; border-radius: 6px; padding: .45rem .9rem; border: 1px solid var(--line);
  background: var(--panel); color: var(--text);
}
button:hover { border-color: var(--accent); }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; font-weight: 600; }
@media (prefers-color-scheme: dark) { button.primary { color: #0b1520; } }
main { padding: 1rem clamp(.75rem, 3vw, 2rem) 2rem; max-width: 1400px; margin: 0 auto; }
.banner {
  margin: 0 0 1rem; padding: .65rem .9rem; border-radius: 8px; border: 1px solid currentColor;
  background: var(--warn-bg); color: var(--warn); font-weight: 600;
}
.signin {
  max-width: 26rem; margin: 8vh auto 0; padding: 1.5rem; background: var(--panel);
  border: 1px solid var(--line); border-radius: 10px;
}
.signin h2 { margin: 0 0 .25rem; font-size: 1.2rem; }
.signin p.hint { margin: 0 0 1rem; color: var(--muted); font-size: .9rem; }
.signin label { display: block; font-weight: 600; margin-bottom: .3rem; }
.signin input {
  display: block; width: 100%; font: inherit; padding: .5rem .6rem; margin-bottom: .9rem;
  border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--text);
}
.signin .message { margin: 0 0 .9rem; padding: .55rem .7rem; border-radius: 6px; }
.signin .message.error { background: var(--danger-bg); color: var(--danger); border: 1px solid currentColor; }
.signin .message.info { background: var(--bg); color: var(--muted); border: 1px solid var(--line); }
section > h2 { font-size: 1rem; margin: 1.5rem 0 .6rem; color: var(--muted); font-weight: 600; }
section > h2:focus { outline: none; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 9.5rem), 1fr)); gap: .75rem; margin: 0; }
.tile { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: .7rem .9rem; min-width: 0; }
.tile dt { color: var(--muted); font-size: .85rem; }
.tile dd { margin: .15rem 0 0; }
.tile .value { font-size: 1.7rem; font-weight: 650; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.tile .unit { font-size: .9rem; color: var(--muted); margin-left: .25rem; }
.tile .nowrap { white-space: nowrap; }
.tile .sub { display: block; color: var(--muted); font-size: .8rem; min-height: 1.1em; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 26rem), 1fr)); gap: .75rem; }
.chart { margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: .7rem .9rem .5rem; min-width: 0; overflow: hidden; }
.chart figcaption { display: flex; flex-wrap: wrap; align-items: baseline; gap: .2rem .9rem; margin-bottom: .3rem; }
.chart .chart-title { font-weight: 600; margin-right: auto; }
.chart .legend { display: flex; flex-wrap: wrap; gap: .2rem .9rem; list-style: none; margin: 0; padding: 0; font-size: .85rem; color: var(--muted); }
.chart .legend b { color: var(--text); font-variant-numeric: tabular-nums; font-weight: 600; }
.swatch { display: inline-block; width: .9rem; height: 3px; vertical-align: middle; margin-right: .35rem; border-radius: 2px; }
.swatch.s0 { background: var(--s0); }
.swatch.s1 { background: var(--s1); }
.chart-box { width: 100%; height: 190px; }
.chart svg { display: block; overflow: visible; }
.chart svg .grid { stroke: var(--grid); stroke-width: 1; }
.chart svg .axis { stroke: var(--line); stroke-width: 1; }
.chart svg text { fill: var(--muted); font-size: 11px; font-variant-numeric: tabular-nums; }
.chart svg text.nodata { font-size: 13px; }
.chart svg .series { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
.chart svg .series.s0 { stroke: var(--s0); }
.chart svg .series.s1 { stroke: var(--s1); stroke-dasharray: 6 3; }
.chart svg .dot.s0 { fill: var(--s0); }
.chart svg .dot.s1 { fill: var(--s1); }
.table-wrap { overflow-x: auto; background: var(--panel); border: 1px solid var(--line); border-radius: 10px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
caption { text-align: left; padding: .6rem .9rem; color: var(--muted); font-size: .85rem; }
th, td { padding: .5rem .9rem; border-top: 1px solid var(--line); text-align: right; white-space: nowrap; }
thead th { font-size: .85rem; color: var(--muted); font-weight: 600; background: var(--bg); }
th.name, thead th:first-child { text-align: left; }
tbody th.name { font-weight: 500; white-space: normal; overflow-wrap: anywhere; min-width: 8rem; }
tbody tr.self th.name { font-weight: 650; }
tbody th.name code { white-space: nowrap; }
.badge {
  display: inline-block; margin-left: .5rem; padding: 0 .45rem; border-radius: 999px; font-size: .75rem; font-weight: 600;
  background: var(--accent); color: #fff; vertical-align: 1px;
}
@media (prefers-color-scheme: dark) { .badge { color: #0b1520; } }
tfoot th, tfoot td { font-weight: 650; border-top: 2px solid var(--line); }
.link-up { color: var(--text); }
.link-down { color: var(--danger); font-weight: 650; }
.muted { color: var(--muted); font-size: .85rem; margin-left: .45rem; }
.note { margin: .5rem 0 0; color: var(--warn); font-size: .9rem; }
.empty { margin: 0; padding: 1rem .9rem; color: var(--muted); background: var(--panel); border: 1px dashed var(--line); border-radius: 10px; }
[hidden] { display: none !important; }
@media (max-width: 600px) {
  body { font-size: 14px; }
  .tile .value { font-size: 1.4rem; }
  th, td { padding: .45rem .6rem; }
  .chart-box { height: 170px; }
}
`
