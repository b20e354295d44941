import { createHash } from 'node:crypto'
import { appScript } from './app-script.js'
import { chartScript } from './chart-script.js'
import { dashboardStyle } from './dashboard-style.js'
import { metricsTextScript } from './metrics-text-script.js'

/**
 * The page's fixed markup. Everything the server says is filled in by the script
 * with textContent / createElement (document names are user-controlled).
 */
const BODY = `
<header class="top">
  <h1>Concord operations</h1>
  <p class="meta" id="meta" hidden>
    <span>Node <code id="node-id">–</code></span>
    <span id="updated" aria-live="off">not updated yet</span>
  </p>
  <button type="button" id="sign-out" hidden>Sign out</button>
</header>
<main>
  <div id="banner" class="banner" role="status" aria-live="polite" hidden></div>

  <section id="signin" class="signin" aria-labelledby="signin-heading">
    <h2 id="signin-heading">Sign in</h2>
    <p class="hint">The dashboard reads /admin/stats and /metrics with the server's admin token. It is kept in this tab only (sessionStorage).</p>
    <form id="signin-form" novalidate>
      <p id="signin-message" class="message" role="alert" hidden></p>
      <input type="text" name="username" value="concord-admin" autocomplete="username" hidden aria-hidden="true" tabindex="-1">
      <label for="token">Admin token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" spellcheck="false" required aria-describedby="signin-message">
      <button type="submit" class="primary">Sign in</button>
    </form>
  </section>

  <div id="dashboard" hidden>
    <section aria-labelledby="now-heading">
      <h2 id="now-heading" tabindex="-1">This node now (from /metrics)</h2>
      <dl class="tiles" id="tiles">
        <div class="tile"><dt>Connections</dt><dd><span class="value" data-tile="connections">–</span><span class="sub" data-sub="connections"></span></dd></div>
        <div class="tile"><dt>Sessions</dt><dd><span class="value" data-tile="sessions">–</span><span class="sub"></span></dd></div>
        <div class="tile"><dt>Documents loaded</dt><dd><span class="value" data-tile="documents">–</span><span class="sub"></span></dd></div>
        <div class="tile"><dt>Updates applied</dt><dd><span class="value" data-tile="updates">–</span><span class="sub">total since start</span></dd></div>
        <div class="tile"><dt>Refusals</dt><dd><span class="value" data-tile="refusals">–</span><span class="sub" data-sub="refusals">total since start</span></dd></div>
        <div class="tile"><dt>Resident memory</dt><dd><span class="value" data-tile="rss">–</span><span class="unit">MiB</span><span class="sub"></span></dd></div>
        <div class="tile"><dt>Send queue</dt><dd><span class="value" data-tile="pending">–</span><span class="unit">KiB</span><span class="sub">waiting for slow readers</span></dd></div>
      </dl>
    </section>

    <section id="nodes-section" aria-labelledby="nodes-heading" hidden>
      <h2 id="nodes-heading">Nodes</h2>
      <div class="table-wrap" role="region" aria-labelledby="nodes-heading" tabindex="0">
        <table id="nodes">
          <caption>Every live node of this region, from the heartbeat each publishes every 2 s; the node that serves this page is marked.</caption>
          <thead>
            <tr><th scope="col">Node</th><th scope="col">Connections</th><th scope="col">Sessions</th><th scope="col">Documents</th><th scope="col">Updates/s</th><th scope="col">CPU</th><th scope="col">Loop delay</th><th scope="col">Memory</th><th scope="col">Up</th><th scope="col">Version</th><th scope="col">Address</th></tr>
          </thead>
          <tbody></tbody>
          <tfoot></tfoot>
        </table>
      </div>
      <p class="note" id="cluster-error" role="status" hidden></p>
    </section>

    <section id="regions-section" aria-labelledby="regions-heading" hidden>
      <h2 id="regions-heading">Regions</h2>
      <div class="table-wrap" role="region" aria-labelledby="regions-heading" tabindex="0">
        <table id="regions">
          <caption id="regions-caption">Replication to the peer regions.</caption>
          <thead>
            <tr><th scope="col">Peer region</th><th scope="col">Queued</th><th scope="col">Lag</th><th scope="col">Link</th><th scope="col">Shipped by</th></tr>
          </thead>
          <tbody></tbody>
        </table>
      </div>
    </section>

    <section aria-labelledby="history-heading">
      <h2 id="history-heading">History</h2>
      <div class="charts" id="charts"></div>
    </section>

    <section aria-labelledby="busiest-heading">
      <h2 id="busiest-heading">Busiest rooms</h2>
      <div class="table-wrap" id="busiest-wrap" role="region" aria-labelledby="busiest-heading" tabindex="0" hidden>
        <table id="busiest">
          <caption>The documents with the most updates in the last sampling interval, on this node.</caption>
          <thead>
            <tr><th scope="col">Room</th><th scope="col">Sessions</th><th scope="col">Updates/s</th><th scope="col">Size</th></tr>
          </thead>
          <tbody></tbody>
        </table>
      </div>
      <p class="empty" id="busiest-empty">No document is loaded on this node.</p>
    </section>
  </div>
</main>`

/** The page's one script: its text is hashed into the CSP, so it must be the exact text between the tags. */
const SCRIPT = `
'use strict';
(function () {
${metricsTextScript}
${chartScript}
${appScript}
})();
`

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`
}

/**
 * The page's Content-Security-Policy: its one inline script and its one inline style run by
 * their hashes, and nothing else does (no 'unsafe-inline': markup injected into the page could
 * not run a script or an event handler); it reads /admin/stats and /metrics of its own origin
 * only, and no other site may frame it.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(dashboardStyle)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

/** The live dashboard (GET /dashboard): one self-contained HTML page (serve it with DASHBOARD_CSP). */
export function dashboardHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Concord operations dashboard</title>
<link rel="icon" href="data:,">
<style>${dashboardStyle}</style>
</head>
<body>${BODY}
<script>${SCRIPT}</script>
</body>
</html>
`
}
