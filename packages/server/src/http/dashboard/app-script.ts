/**
 * Browser code (a script string, inlined into the page after `metricsTextScript` and
 * `chartScript`): sign-in, polling and rendering.
 *
 * - The admin token is asked for in a form and kept in sessionStorage; "Sign out" removes it.
 * - Every 2 s it reads GET admin/stats (JSON) and GET metrics (Prometheus text) with
 *   `Authorization: Bearer <token>`. The tiles come from /metrics, the charts and the busiest
 *   rooms, the nodes table (every live node of the region) and the regions panel from /admin/stats. A 401/403 from either signs out with a message; a network error
 *   or another status shows a banner and keeps polling.
 * - Server strings only ever reach the page through textContent / setAttribute.
 *
 * Plain ES2020 without template literals (it lives in one).
 */
export const appScript = String.raw`
var POLL_MS = 2000
var REQUEST_TIMEOUT_MS = 8000
var TOKEN_KEY = 'concord.dashboard.adminToken'
var MIB = 1048576
var numberFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })
var decimalFormat = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })

function byId(id) { return document.getElementById(id) }
function finite(v) { return typeof v === 'number' && isFinite(v) ? v : null }
function pad2(n) { return (n < 10 ? '0' : '') + n }
function clock(date) { return pad2(date.getHours()) + ':' + pad2(date.getMinutes()) + ':' + pad2(date.getSeconds()) }
function html(tag, className, text) {
  var el = document.createElement(tag)
  if (className) el.className = className
  if (text !== undefined) el.textContent = text
  return el
}

var ui = {
  meta: byId('meta'),
  nodeId: byId('node-id'),
  updated: byId('updated'),
  signOut: byId('sign-out'),
  banner: byId('banner'),
  signin: byId('signin'),
  form: byId('signin-form'),
  message: byId('signin-message'),
  token: byId('token'),
  submit: byId('signin-form').querySelector('button[type="submit"]'),
  dashboard: byId('dashboard'),
  nowHeading: byId('now-heading'),
  historyHeading: byId('history-heading'),
  charts: byId('charts'),
  busiestWrap: byId('busiest-wrap'),
  busiestBody: byId('busiest').querySelector('tbody'),
  busiestEmpty: byId('busiest-empty'),
  nodesSection: byId('nodes-section'),
  nodesBody: byId('nodes').querySelector('tbody'),
  nodesFoot: byId('nodes').querySelector('tfoot'),
  clusterError: byId('cluster-error'),
  regionsSection: byId('regions-section'),
  regionsCaption: byId('regions-caption'),
  regionsBody: byId('regions').querySelector('tbody'),
}

var CHARTS = [
  { id: 'chart-connections', title: 'Connections', integer: true, unit: '',
    series: [{ label: 'connections', get: function (s) { return s.connections } }] },
  { id: 'chart-updates', title: 'Updates per second', unit: '/s',
    series: [{ label: 'updates/s', get: function (s) { return s.updatesPerSecond } }] },
  { id: 'chart-ack', title: 'Ack latency', unit: ' ms', noData: 'No acks in this period',
    series: [{ label: 'p50', get: function (s) { return s.ackP50Ms } }, { label: 'p99', get: function (s) { return s.ackP99Ms } }] },
  { id: 'chart-documents', title: 'Documents loaded', integer: true, unit: '',
    series: [{ label: 'documents', get: function (s) { return s.documentsLoaded } }] },
  { id: 'chart-memory', title: 'Memory', unit: ' MiB',
    series: [
      { label: 'RSS', get: function (s) { return finite(s.rssBytes) === null ? null : s.rssBytes / MIB } },
      { label: 'heap used', get: function (s) { return finite(s.heapUsedBytes) === null ? null : s.heapUsedBytes / MIB } },
    ] },
]

var state = { token: null, generation: 0, timer: null, stats: null, okAt: null, shown: false, focusOnShow: false }

function buildCharts() {
  CHARTS.forEach(function (c) {
    var figure = html('figure', 'chart')
    var caption = html('figcaption')
    caption.appendChild(html('span', 'chart-title', c.title + (c.unit.trim() !== '' && c.unit !== '/s' ? ' (' + c.unit.trim() + ')' : '')))
    var legend = html('ul', 'legend')
    c.values = c.series.map(function (s, i) {
      var item = html('li')
      if (c.series.length > 1) {
        item.appendChild(html('span', 'swatch s' + i))
        item.appendChild(document.createTextNode(s.label + ' '))
      } else {
        item.appendChild(document.createTextNode('now '))
      }
      var value = html('b', '', '–')
      item.appendChild(value)
      legend.appendChild(item)
      return value
    })
    legend.setAttribute('aria-label', c.series.length > 1 ? 'Legend and current values' : 'Current value')
    caption.appendChild(legend)
    var box = html('div', 'chart-box')
    var svg = document.createElementNS(SVG_NS, 'svg')
    svg.id = c.id
    svg.setAttribute('role', 'img')
    svg.setAttribute('aria-labelledby', c.id + '-title ' + c.id + '-desc')
    svg.setAttribute('focusable', 'false')
    box.appendChild(svg)
    figure.appendChild(caption)
    figure.appendChild(box)
    ui.charts.appendChild(figure)
    c.svg = svg
    c.box = box
  })
}

function describeSpan(ms) {
  if (ms < 90e3) return Math.max(1, Math.round(ms / 1000)) + ' s'
  return Number((ms / 60e3).toFixed(1)) + ' min'
}

function withUnit(v, unit) {
  if (v === null) return 'no data'
  return formatCompact(v) + unit
}

function renderCharts() {
  var stats = state.stats
  if (stats === null) return
  var samples = Array.isArray(stats.history) ? stats.history.slice() : []
  var now = stats.now
  if (now && finite(now.t) !== null && (samples.length === 0 || now.t > samples[samples.length - 1].t)) samples.push(now)
  samples = samples.filter(function (s) { return s && finite(s.t) !== null })
  var times = samples.map(function (s) { return s.t })
  var span = times.length > 1 ? times[times.length - 1] - times[0] : 0
  var intervalMs = finite(stats.intervalMs) || POLL_MS
  ui.historyHeading.textContent = 'History: last ' + describeSpan(Math.max(span, intervalMs)) + ', a sample every ' + describeSpan(intervalMs)
  CHARTS.forEach(function (c) {
    var series = c.series.map(function (s) {
      return { label: s.label, values: samples.map(function (x) { return finite(s.get(x)) }) }
    })
    series.forEach(function (s, i) {
      var current = null
      for (var k = s.values.length - 1; k >= 0 && current === null; k--) current = s.values[k]
      c.values[i].textContent = withUnit(current, c.unit)
    })
    var width = c.box.clientWidth
    var height = c.box.clientHeight
    if (width === 0 || height === 0) return
    var geometry = chartGeometry({ width: width, height: height, times: times, series: series, integer: c.integer, minSpanMs: 60e3 })
    var description = series.map(function (s) {
      var present = s.values.filter(function (v) { return v !== null })
      if (present.length === 0) return s.label + ': no data.'
      return s.label + ': now ' + withUnit(present[present.length - 1], c.unit) + ', lowest ' + withUnit(Math.min.apply(null, present), c.unit) +
        ', highest ' + withUnit(Math.max.apply(null, present), c.unit) + '.'
    }).join(' ') + ' ' + samples.length + ' samples.'
    drawChart(c.svg, geometry, {
      title: c.title + ' over the last ' + describeSpan(Math.max(span, intervalMs)),
      description: description,
      noData: c.noData || 'No data yet',
    })
  })
}

function formatCount(n) { return n === null ? 'n/a' : numberFormat.format(n) }
function formatDecimal(n) { return n === null ? 'n/a' : decimalFormat.format(n) }
function formatBytes(n) {
  if (n === null) return '–'
  if (n < 1024) return numberFormat.format(n) + ' B'
  if (n < MIB) return decimalFormat.format(n / 1024) + ' KiB'
  if (n < 1024 * MIB) return decimalFormat.format(n / MIB) + ' MiB'
  return decimalFormat.format(n / 1024 / MIB) + ' GiB'
}

function setTile(name, text) {
  var el = document.querySelector('[data-tile="' + name + '"]')
  if (el) el.textContent = text
}
function setSub(name, text) {
  var el = document.querySelector('[data-sub="' + name + '"]')
  if (el) el.textContent = text
}

function renderTiles(parsed) {
  var connections = metricSum(parsed, 'concord_connections')
  setTile('connections', formatCount(connections))
  var native = metricSum(parsed, 'concord_connections', { protocol: 'native' })
  var yWebsocket = metricSum(parsed, 'concord_connections', { protocol: 'y-websocket' })
  var bySource = document.querySelector('[data-sub="connections"]')
  bySource.replaceChildren()
  if (connections !== null) {
    bySource.appendChild(html('span', 'nowrap', 'native ' + formatCount(native)))
    bySource.appendChild(document.createTextNode(' · '))
    bySource.appendChild(html('span', 'nowrap', 'y-websocket ' + formatCount(yWebsocket)))
  }
  setTile('sessions', formatCount(metricSum(parsed, 'concord_sessions')))
  setTile('documents', formatCount(metricSum(parsed, 'concord_documents_loaded')))
  setTile('updates', formatCount(metricSum(parsed, 'concord_updates_applied_total')))
  setTile('refusals', formatCount(metricSum(parsed, 'concord_refused_total')))
  var top = null
  parsed.samples.forEach(function (s) {
    if (s.name === 'concord_refused_total' && s.value > 0 && (top === null || s.value > top.value)) top = s
  })
  setSub('refusals', top === null ? 'total since start' : 'most: ' + String(top.labels.code || '?').replace(/^CONCORD_ERR_/, '') + ' (' + formatCount(top.value) + ')')
  var rss = metricSum(parsed, 'process_resident_memory_bytes')
  setTile('rss', formatDecimal(rss === null ? null : rss / MIB))
  var pending = metricSum(parsed, 'concord_send_pending_bytes')
  setTile('pending', formatDecimal(pending === null ? null : pending / 1024))
}

function renderBusiest(rooms) {
  var rows = (Array.isArray(rooms) ? rooms : []).map(function (r) {
    var row = html('tr')
    var name = html('th', 'name', String(r.name))
    name.setAttribute('scope', 'row')
    row.appendChild(name)
    row.appendChild(html('td', '', formatCount(finite(r.sessions))))
    row.appendChild(html('td', '', formatDecimal(finite(r.updatesPerSecond))))
    row.appendChild(html('td', '', formatBytes(finite(r.bytes))))
    return row
  })
  ui.busiestBody.replaceChildren.apply(ui.busiestBody, rows)
  ui.busiestWrap.hidden = rows.length === 0
  ui.busiestEmpty.hidden = rows.length > 0
}

function formatPercent(n) { return n === null ? '–' : decimalFormat.format(n) + ' %' }
function formatMs(n) { return n === null ? '–' : decimalFormat.format(n) + ' ms' }
function formatSeconds(n) { return n === null ? '–' : (n < 90 ? decimalFormat.format(n) + ' s' : describeSpan(n * 1000)) }
function formatUptime(startedAt, now) {
  if (startedAt === null || startedAt <= 0) return '–'
  var s = Math.max(0, (now - startedAt) / 1000)
  if (s < 3600) return Math.floor(s / 60) + ' min'
  if (s < 172800) return decimalFormat.format(s / 3600) + ' h'
  return decimalFormat.format(s / 86400) + ' d'
}

/** One row of figures: a header cell (the node or a label), then the cells. */
function figureRow(head, cells, className) {
  var row = html('tr', className)
  head.setAttribute('scope', 'row')
  row.appendChild(head)
  cells.forEach(function (text) { row.appendChild(html('td', '', text)) })
  return row
}

/** The nodes table: every live node (GET /admin/stats nodes), this one marked; hidden on a standalone server. */
function renderNodes(stats) {
  var nodes = Array.isArray(stats.nodes) ? stats.nodes : []
  var clustered = typeof stats.node === 'string' && nodes.length > 0
  ui.nodesSection.hidden = !clustered
  if (!clustered) {
    ui.nodesBody.replaceChildren()
    ui.nodesFoot.replaceChildren()
    return
  }
  var now = finite(stats.now && stats.now.t) || Date.now()
  var rows = nodes.map(function (n) {
    var name = html('th', 'name')
    name.appendChild(html('code', '', String(n.nodeId)))
    if (n.self === true) name.appendChild(html('span', 'badge', 'this node'))
    if (typeof n.region === 'string') name.appendChild(html('span', 'muted', n.region))
    return figureRow(name, [
      formatCount(finite(n.connections)), formatCount(finite(n.sessions)), formatCount(finite(n.documentsLoaded)),
      formatDecimal(finite(n.updatesPerSecond)), formatPercent(finite(n.cpuPercent)), formatMs(finite(n.eventLoopDelayMs)),
      formatBytes(finite(n.rssBytes)), formatUptime(finite(n.startedAt), now), String(n.version || '–'), String(n.httpUrl || '–'),
    ], n.self === true ? 'self' : '')
  })
  ui.nodesBody.replaceChildren.apply(ui.nodesBody, rows)
  var t = stats.totals || {}
  var label = html('th', 'name', 'All ' + formatCount(finite(t.nodes)) + ' nodes')
  ui.nodesFoot.replaceChildren(figureRow(label, [
    formatCount(finite(t.connections)), formatCount(finite(t.sessions)), formatCount(finite(t.documentsLoaded)),
    formatDecimal(finite(t.updatesPerSecond)), '', '', formatBytes(finite(t.rssBytes)), '', '', '',
  ], 'totals'))
  var problem = typeof stats.clusterError === 'string' ? stats.clusterError : ''
  ui.clusterError.textContent = problem === '' ? '' : 'Only this node is shown: ' + problem
  ui.clusterError.hidden = problem === ''
}

/** The regions panel: this node's region and, per peer, the queue, the lag and the link; hidden without regions. */
function renderRegions(regions) {
  var peers = regions && Array.isArray(regions.peers) ? regions.peers : null
  ui.regionsSection.hidden = peers === null
  if (peers === null) {
    ui.regionsBody.replaceChildren()
    return
  }
  ui.regionsCaption.textContent = 'Replication from region ' + String(regions.name) + ' to its peer regions: rows waiting, the age of the oldest, and whether the last shipment reached the peer.'
  var rows = peers.map(function (p) {
    var link = p.linkUp === true ? 'up' : p.linkUp === false ? 'down' : 'not tried yet'
    var row = figureRow(html('th', 'name', String(p.peer)), [
      formatCount(finite(p.queued)), formatSeconds(finite(p.lagSeconds)), link, typeof p.shippingNode === 'string' ? p.shippingNode : '–',
    ], '')
    row.children[3].className = p.linkUp === false ? 'link-down' : 'link-up'
    row.children[3].setAttribute('data-link', link)
    return row
  })
  ui.regionsBody.replaceChildren.apply(ui.regionsBody, rows)
}

function render(stats, metricsText) {
  state.stats = stats
  state.okAt = new Date()
  ui.nodeId.textContent = typeof stats.node === 'string' ? stats.node : 'standalone'
  ui.updated.textContent = 'updated ' + clock(state.okAt)
  renderTiles(parseMetricsText(metricsText))
  renderBusiest(stats.busiest)
  renderNodes(stats)
  renderRegions(stats.regions)
  renderCharts()
}

function showMessage(text, kind) {
  ui.message.textContent = text
  ui.message.className = 'message ' + kind
  ui.message.hidden = text === ''
}

function showBanner(text) {
  if (ui.banner.textContent !== text) ui.banner.textContent = text
  ui.banner.hidden = false
}

function showDashboard() {
  if (state.shown) return
  state.shown = true
  ui.signin.hidden = true
  ui.dashboard.hidden = false
  ui.meta.hidden = false
  ui.signOut.hidden = false
  if (state.focusOnShow) ui.nowHeading.focus()
  renderCharts()
}

function clearFigures() {
  document.querySelectorAll('[data-tile]').forEach(function (el) { el.textContent = '–' })
  setSub('connections', '')
  setSub('refusals', 'total since start')
  CHARTS.forEach(function (c) {
    c.svg.replaceChildren()
    c.values.forEach(function (v) { v.textContent = '–' })
  })
  renderBusiest([])
  renderNodes({})
  renderRegions(null)
  ui.nodeId.textContent = '–'
  ui.updated.textContent = 'not updated yet'
}

function stop() {
  state.generation++
  if (state.timer !== null) clearTimeout(state.timer)
  state.timer = null
  state.token = null
  state.stats = null
  state.okAt = null
  state.shown = false
}

function signOut(text, kind) {
  stop()
  try { sessionStorage.removeItem(TOKEN_KEY) } catch (err) { /* storage disabled: nothing kept */ }
  clearFigures()
  ui.dashboard.hidden = true
  ui.meta.hidden = true
  ui.signOut.hidden = true
  ui.banner.hidden = true
  ui.signin.hidden = false
  ui.submit.disabled = false
  showMessage(text, kind)
  ui.token.focus()
}

function start(token, focusOnShow) {
  stop()
  state.token = token
  state.focusOnShow = focusOnShow
  poll(state.generation)
}

/** Both endpoints, with the token: { stats, metrics } or { refused: { path, status } } or { problem }. */
async function fetchBoth(token) {
  var controller = new AbortController()
  var timer = setTimeout(function () { controller.abort() }, REQUEST_TIMEOUT_MS)
  var init = { headers: { authorization: 'Bearer ' + token }, cache: 'no-store', credentials: 'omit', signal: controller.signal }
  var paths = ['/admin/stats', '/metrics']
  try {
    var responses
    try {
      responses = await Promise.all([fetch('admin/stats', init), fetch('metrics', init)])
    } catch (err) {
      return { problem: err && err.name === 'AbortError' ? 'Disconnected: the server did not answer within ' + REQUEST_TIMEOUT_MS / 1000 + ' s' : 'Disconnected: the server cannot be reached' }
    }
    for (var i = 0; i < responses.length; i++) {
      if (responses[i].status === 401 || responses[i].status === 403) return { refused: { path: paths[i], status: responses[i].status } }
    }
    for (var j = 0; j < responses.length; j++) {
      if (!responses[j].ok) return { problem: 'The server answered HTTP ' + responses[j].status + ' for ' + paths[j] }
    }
    try {
      var stats = await responses[0].json()
      var text = await responses[1].text()
      if (stats === null || typeof stats !== 'object') return { problem: 'The server sent stats the dashboard cannot read' }
      return { stats: stats, metrics: text }
    } catch (err) {
      return { problem: err && err.name === 'SyntaxError' ? 'The server sent stats the dashboard cannot read' : 'Disconnected: the connection broke while reading' }
    }
  } finally {
    clearTimeout(timer)
  }
}

async function poll(generation) {
  var outcome = await fetchBoth(state.token)
  if (generation !== state.generation) return
  if (outcome.refused) {
    signOut('The server refused this token: ' + outcome.refused.path + ' answered HTTP ' + outcome.refused.status +
      '. Check the admin token and sign in again.', 'error')
    return
  }
  // the next poll is set before rendering, so that a rendering failure cannot stop the updates
  state.timer = setTimeout(function () { poll(generation) }, POLL_MS)
  showDashboard()
  if (outcome.problem) {
    showBanner(outcome.problem + '; retrying every ' + POLL_MS / 1000 + ' s' + (state.okAt ? ' (the figures below are from ' + clock(state.okAt) + ')' : '') + '.')
    ui.updated.classList.add('stale')
    return
  }
  ui.banner.hidden = true
  ui.updated.classList.remove('stale')
  render(outcome.stats, outcome.metrics)
}

ui.form.addEventListener('submit', function (event) {
  event.preventDefault()
  var token = ui.token.value.trim()
  if (token === '') {
    showMessage('Enter the admin token.', 'error')
    ui.token.focus()
    return
  }
  try { sessionStorage.setItem(TOKEN_KEY, token) } catch (err) { /* storage disabled: the token lives in this page only */ }
  ui.token.value = ''
  ui.submit.disabled = true
  showMessage('Signing in…', 'info')
  start(token, true)
})

ui.signOut.addEventListener('click', function () {
  signOut('Signed out: the token was removed from this tab.', 'info')
})

buildCharts()
if (typeof ResizeObserver === 'function') {
  var pendingFrame = 0
  new ResizeObserver(function () {
    if (pendingFrame !== 0) return
    pendingFrame = requestAnimationFrame(function () {
      pendingFrame = 0
      renderCharts()
    })
  }).observe(ui.charts)
}

var stored = null
try { stored = sessionStorage.getItem(TOKEN_KEY) } catch (err) { stored = null }
if (stored) {
  ui.signin.hidden = true
  start(stored, false)
} else {
  ui.token.focus()
}
`
