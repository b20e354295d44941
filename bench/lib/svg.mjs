// Dependency-free SVG charts for benchmark reports.
//
// Every chart function returns one complete, self-contained SVG document as a
// string (white background, no external fonts, no ids, no scripts), ready to
// be written to a .svg file or inlined into HTML/markdown. All text is
// escaped for XML; non-finite numbers never reach the output.

const WIDTH = 720
const HEIGHT = 360
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"

const INK = '#111827'
const MUTED = '#4b5563'
const FAINT = '#9ca3af'
const GRID = '#e5e7eb'
const AXIS = '#6b7280'

/**
 * Series colours, in order. The first four are chosen to be clearly distinct
 * (also for the common forms of colour blindness); more series cycle through
 * the rest.
 */
export const PALETTE = Object.freeze(['#2563eb', '#ea580c', '#059669', '#9333ea', '#dc2626', '#0891b2', '#ca8a04', '#4b5563'])

const colour = (i) => PALETTE[i % PALETTE.length]

// ---------------------------------------------------------------- text & XML

const ENTITIES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' }

/**
 * Escapes a value for use as XML text or attribute content (also drops the
 * control characters XML 1.0 does not allow).
 * @param {unknown} value
 * @returns {string}
 */
export function escapeXml (value) {
  return String(value ?? '')
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '') // eslint-disable-line no-control-regex
    .replace(/[&<>"']/g, (c) => ENTITIES[c])
}

/** Coordinate → string with at most one decimal; never NaN/Infinity. */
function n (x) {
  if (!Number.isFinite(x)) return '0'
  const r = Math.round(x * 10) / 10
  return String(r === 0 ? 0 : r)
}

/** One element; numeric attributes go through n(), strings are escaped. */
function el (tag, attrs, content) {
  let s = '<' + tag
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    s += ` ${k}="${typeof v === 'number' ? n(v) : escapeXml(v)}"`
  }
  return content === undefined ? s + '/>' : `${s}>${content}</${tag}>`
}

const text = (x, y, str, attrs = {}) => el('text', { x, y, ...attrs }, escapeXml(str))

/** Rough rendered width of a string in a sans-serif font (slightly generous). */
function textWidth (str, size, bold = false) {
  return String(str).length * size * (bold ? 0.66 : 0.58)
}

/** Cuts a string with an ellipsis so that it fits into maxWidth. */
function fit (str, maxWidth, size, bold = false) {
  str = String(str)
  if (textWidth(str, size, bold) <= maxWidth) return str
  const chars = Math.max(1, Math.floor(maxWidth / textWidth('x', size, bold)) - 1)
  return str.slice(0, chars) + '…'
}

// ------------------------------------------------------------ number formats

/** Separators, at most `digits` decimals, trailing zeros dropped. */
function grouped (x, digits = 0) {
  return x.toLocaleString('en-US', { maximumFractionDigits: digits })
}

/** Decimals needed to print multiples of `step` exactly. */
function decimalsFor (step) {
  if (!(step > 0)) return 0
  return Math.min(10, Math.max(0, -Math.floor(Math.log10(step) + 1e-9)))
}

/** Labels for the ticks of a linear axis, one shared unit (k/M) and precision. */
function tickLabels (ticks) {
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : 1
  const big = Math.max(step, ...ticks.map(Math.abs))
  const [div, suffix] = big >= 1e7 ? [1e6, 'M'] : big >= 1e4 ? [1e3, 'k'] : [1, '']
  return ticks.map((v) => v === 0 ? '0' : grouped(v / div, decimalsFor(step / div)) + suffix)
}

/** Compact value label with about three significant digits. */
function formatValue (v) {
  const a = Math.abs(v)
  if (a >= 1e7) return grouped(v / 1e6, a >= 1e8 ? 0 : 1) + 'M'
  if (a >= 1e5) return grouped(v / 1e3, 0) + 'k'
  if (a >= 100) return grouped(v, 0)
  if (a >= 10) return grouped(v, 1)
  if (a >= 1) return grouped(v, 2)
  if (a === 0) return '0'
  return String(Number(v.toPrecision(2)))
}

/** Label of a tick on the logarithmic latency axis (values like 0.05, 2, 10k). */
function formatLogTick (v) {
  if (v >= 1e4) return grouped(v / 1e3, 0) + 'k'
  return grouped(v, 3)
}

// ---------------------------------------------------------------- ticks

function niceStep (raw) {
  const exp = Math.floor(Math.log10(raw))
  const f = raw / 10 ** exp
  const nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10
  return nf * 10 ** exp
}

/**
 * Round tick values (multiples of 1, 2 or 5 × 10^k) covering [min, max].
 * The first and last tick enclose the range, so they can be used directly as
 * the axis domain. About `count` ticks are returned (never fewer than two).
 * @param {number} min
 * @param {number} max
 * @param {number} [count=5] wanted number of ticks
 * @returns {number[]} ascending tick values
 */
export function niceTicks (min, max, count = 5) {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1]
  if (min > max) [min, max] = [max, min]
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.5
    if (min >= 0 && min - pad < 0) min = 0
    else min -= pad
    max += pad
  }
  const step = niceStep((max - min) / (Math.max(2, Math.round(count) || 2) - 1))
  const digits = decimalsFor(step)
  const lo = Math.floor(min / step + 1e-9)
  const hi = Math.ceil(max / step - 1e-9)
  const ticks = []
  for (let i = lo; i <= hi; i++) ticks.push(Number((i * step).toFixed(digits)) || 0)
  if (ticks.length < 2) ticks.push(Number(((hi + 1) * step).toFixed(digits)))
  return ticks
}

// ---------------------------------------------------------------- layout

/**
 * Plot area for a chart: room for the title, legend rows, an optional band
 * above the plot, y tick labels of the given widths and the axis labels.
 */
function layout ({ width, height, title, legendRows, band = 0, yTickLabels, yLabel, xLabel, lastXLabel = '' }) {
  const tickW = Math.max(0, ...yTickLabels.map((s) => textWidth(s, 11)))
  const top = (title ? 34 : 12) + legendRows * 18 + band + 10
  const left = Math.ceil((yLabel ? 30 : 10) + tickW + 8)
  const right = width - Math.max(18, Math.ceil(textWidth(lastXLabel, 11) / 2 + 6))
  const bottom = height - (xLabel ? 50 : 32)
  return { left, top, right, bottom, w: Math.max(10, right - left), h: Math.max(10, bottom - top), width, height }
}

/** Legend items laid out in rows under the title. */
function legendBlock (items, { width, title }, swatch = 'line') {
  const size = 12
  const rows = [[]]
  let x = 16
  for (const item of items) {
    const label = fit(item.label, width - 70, size)
    const w = 24 + textWidth(label, size) + 18
    if (x + w > width - 16 && rows.at(-1).length > 0) { rows.push([]); x = 16 }
    rows.at(-1).push({ ...item, label, x })
    x += w
  }
  const y0 = (title ? 44 : 20)
  let svg = ''
  rows.forEach((row, r) => {
    const cy = y0 + r * 18
    for (const it of row) {
      svg += swatch === 'line'
        ? el('line', { x1: it.x, y1: cy, x2: it.x + 18, y2: cy, stroke: it.colour, 'stroke-width': 3, 'stroke-linecap': 'round' })
        : el('rect', { x: it.x + 4, y: cy - 5, width: 10, height: 10, rx: 1.5, fill: it.colour })
      svg += text(it.x + 24, cy + 4, it.label, { fill: it.muted ? MUTED : INK, 'font-size': size })
    }
  })
  return { svg, rows: rows.length }
}

function svgDocument (opts, body) {
  const { width, height, title } = opts
  return el('svg', {
    xmlns: 'http://www.w3.org/2000/svg',
    width,
    height,
    viewBox: `0 0 ${n(width)} ${n(height)}`,
    role: 'img',
    'aria-label': title || 'chart',
    'font-family': FONT,
    'font-size': 11
  }, '\n' +
    (title ? el('title', {}, escapeXml(title)) + '\n' : '') +
    el('rect', { x: 0, y: 0, width, height, fill: '#ffffff' }) + '\n' +
    (title ? text(16, 24, fit(title, width - 32, 15, true), { fill: INK, 'font-size': 15, 'font-weight': 600 }) + '\n' : '') +
    body + '\n')
}

/** Horizontal grid lines and labels for a linear y axis. */
function yAxis (plot, ticks, sy, yLabel) {
  const labels = tickLabels(ticks)
  let svg = ''
  ticks.forEach((t, i) => {
    const y = sy(t)
    svg += el('line', { x1: plot.left, y1: y, x2: plot.right, y2: y, stroke: GRID, 'stroke-width': 1 })
    svg += text(plot.left - 8, y + 4, labels[i], { 'text-anchor': 'end', fill: MUTED })
  })
  if (yLabel) svg += axisLabelY(plot, yLabel)
  return svg
}

function axisLabelY (plot, label) {
  const cy = plot.top + plot.h / 2
  return el('text', { transform: `translate(20 ${n(cy)}) rotate(-90)`, 'text-anchor': 'middle', fill: INK, 'font-size': 12 },
    escapeXml(fit(label, plot.h, 12)))
}

function axisLabelX (plot, label) {
  return text(plot.left + plot.w / 2, plot.bottom + 40, fit(label, plot.w, 12), { 'text-anchor': 'middle', fill: INK, 'font-size': 12 })
}

/** Axis lines on the left and at the bottom of the plot. */
function frame (plot, baselineY = plot.bottom) {
  return el('line', { x1: plot.left, y1: plot.top, x2: plot.left, y2: plot.bottom, stroke: AXIS, 'stroke-width': 1 }) +
    el('line', { x1: plot.left, y1: baselineY, x2: plot.right, y2: baselineY, stroke: AXIS, 'stroke-width': 1 })
}

function noData (plot, what = 'no data') {
  return text(plot.left + plot.w / 2, plot.top + plot.h / 2, what, { 'text-anchor': 'middle', fill: FAINT, 'font-size': 14, 'font-style': 'italic' })
}

const linear = (d0, d1, r0, r1) => (v) => r0 + ((v - d0) / (d1 - d0 || 1)) * (r1 - r0)

/**
 * Places labels of the given widths along one line as close to their wanted
 * centre x as possible without overlapping, inside [min, max].
 * @returns {number[]} centres, in input order
 */
function dodge (items, min, max, gap = 6) {
  const order = items.map((it, i) => ({ ...it, i })).sort((a, b) => a.x - b.x)
  const clusters = []
  for (const it of order) {
    clusters.push({ items: [it], width: it.w, want: it.x - it.w / 2 })
    settle(clusters, min, max, gap)
  }
  const out = new Array(items.length)
  for (const c of clusters) {
    let x = c.start
    for (const it of c.items) { out[it.i] = x + it.w / 2; x += it.w + gap }
  }
  return out
}

function settle (clusters, min, max, gap) {
  for (;;) {
    const c = clusters.at(-1)
    c.start = Math.max(min, Math.min(max - c.width, c.want))
    const prev = clusters.at(-2)
    if (!prev || prev.start + prev.width + gap <= c.start) return
    clusters.pop()
    // merged cluster: wanted start = mean of members' wanted starts (minus their offsets)
    const nPrev = prev.items.length
    const nCur = c.items.length
    const want = (prev.want * nPrev + (c.want - prev.width - gap) * nCur) / (nPrev + nCur)
    prev.items.push(...c.items)
    prev.width += gap + c.width
    prev.want = want
  }
}

// ------------------------------------------------------- latency histogram

const LOG_BASE_MS = 0.05
const PER_DECADE = 10
const MAX_BUCKETS = PER_DECADE * 10 // 0.05 ms … 5e8 ms; larger values share the last bucket
const edge = (i) => LOG_BASE_MS * 10 ** (i / PER_DECADE)

/**
 * One pass over the samples: log buckets (values ≤ 0.05 ms, zeros and
 * negatives fall into the first one, NaN/±Infinity are skipped), plus the
 * nearest-rank p50/p99 by selection on a copy.
 */
function bucketize (samples) {
  const len = samples.length >>> 0
  const counts = new Float64Array(MAX_BUCKETS)
  const values = new Float64Array(len)
  const scale = PER_DECADE / Math.LN10
  let count = 0
  for (let i = 0; i < len; i++) {
    const raw = samples[i]
    const v = typeof raw === 'number' ? raw : raw == null ? NaN : +raw
    if (!Number.isFinite(v)) continue
    values[count++] = v
    let b = v > LOG_BASE_MS ? Math.floor(Math.log(v / LOG_BASE_MS) * scale + 1e-9) : 0
    if (b >= MAX_BUCKETS) b = MAX_BUCKETS - 1
    counts[b]++
  }
  let first = -1
  let last = -1
  for (let b = 0; b < MAX_BUCKETS; b++) {
    if (counts[b] > 0) { if (first < 0) first = b; last = b }
  }
  if (count === 0) return { n: 0, counts, first, last, p50: NaN, p99: NaN }
  const vals = values.subarray(0, count)
  const k99 = nearestRank(99, count)
  const p99 = select(vals, k99, 0, count - 1)
  const p50 = select(vals, nearestRank(50, count), 0, k99)
  return { n: count, counts, first, last, p50, p99 }
}

/** Index of the nearest-rank percentile p (0..100) among n sorted values. */
function nearestRank (p, count) {
  return Math.min(count - 1, Math.max(0, Math.ceil((p / 100) * count) - 1))
}

/** Quickselect (Hoare partition, median-of-three): a[k] as if a[lo..hi] were sorted. */
function select (a, k, lo, hi) {
  while (hi > lo) {
    const x = a[lo]; const y = a[(lo + hi) >>> 1]; const z = a[hi]
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y)
    let i = lo
    let j = hi
    while (i <= j) {
      while (a[i] < pivot) i++
      while (a[j] > pivot) j--
      if (i <= j) { const t = a[i]; a[i] = a[j]; a[j] = t; i++; j-- }
    }
    if (k <= j) hi = j
    else if (k >= i) lo = i
    else return a[k]
  }
  return a[k]
}

const NICE_MANTISSAS = [1, 2, 5]

/** Largest (down) or smallest (up) value of the form {1,2,5}·10^k around v. */
function niceLog (v, up) {
  const exp = Math.floor(Math.log10(v))
  const cands = []
  for (let e = exp - 1; e <= exp + 1; e++) for (const m of NICE_MANTISSAS) cands.push(Number((m * 10 ** e).toPrecision(3)))
  return up ? cands.find((c) => c >= v * (1 - 1e-9)) : cands.reverse().find((c) => c <= v * (1 + 1e-9))
}

/** Tick marks for a log axis: labelled where labels fit (decades first, then 5s, 2s). */
function logTicks (min, max, sx) {
  const ticks = []
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (let m = 1; m <= 9; m++) {
      const v = Number((m * 10 ** e).toPrecision(3))
      if (v < min * (1 - 1e-9) || v > max * (1 + 1e-9)) continue
      const prio = m === 1 ? 0 : v === min || v === max ? 1 : m === 5 ? 2 : m === 2 ? 3 : -1
      ticks.push({ v, x: sx(v), major: m === 1, prio, label: null })
    }
  }
  const placed = []
  for (const p of [0, 1, 2, 3]) {
    for (const t of ticks.filter((t) => t.prio === p)) {
      const s = formatLogTick(t.v)
      const half = textWidth(s, 11) / 2 + 8
      if (placed.every((q) => Math.abs(q.x - t.x) >= half + q.half)) { t.label = s; placed.push({ x: t.x, half }) }
    }
  }
  return ticks
}

/**
 * Latency distribution of one or more series on a logarithmic x axis.
 *
 * Samples are put into log buckets starting at 0.05 ms, 10 buckets per decade
 * (zeros, negatives and anything below 0.05 ms count in the first bucket;
 * NaN and ±Infinity are ignored). The x axis spans the buckets that hold data
 * (at least one decade), rounded out to 1/2/5·10^k. y is the share of the
 * series' samples in each bucket, in %. Each series is a step line with a
 * light fill, and its p50 and p99 (nearest rank, exact) are marked with a
 * dashed vertical line and a label above the plot. Handles ~1e6 samples per
 * series in a few tens of milliseconds.
 *
 * @param {object} opts
 * @param {string} [opts.title]
 * @param {{ name: string, samplesMs: ArrayLike<number> }[]} opts.series
 * @param {string} [opts.xLabel='latency (ms)']
 * @param {string} [opts.yLabel='share of samples (%)']
 * @param {number} [opts.width=720]
 * @param {number} [opts.height=360]
 * @returns {string} SVG document
 */
export function latencyHistogram ({ title = '', series = [], xLabel = 'latency (ms)', yLabel = 'share of samples (%)', width = WIDTH, height = HEIGHT } = {}) {
  const hists = series.map((s, i) => ({
    name: String(s?.name ?? `series ${i + 1}`),
    colour: colour(i),
    ...bucketize(s?.samplesMs ?? [])
  }))
  const live = hists.filter((h) => h.n > 0)
  const opts = { width, height, title }
  const legend = hists.length > 1
    ? legendBlock(hists.map((h) => ({ colour: h.colour, muted: h.n === 0, label: h.n ? `${h.name}  (n = ${grouped(h.n)})` : `${h.name}  (no data)` })), opts)
    : { svg: '', rows: 0 }

  // x domain: populated buckets, rounded out to 1/2/5·10^k, at least a decade wide
  let xMin = 0.1
  let xMax = 100
  if (live.length) {
    xMin = niceLog(edge(Math.min(...live.map((h) => h.first))), false)
    xMax = niceLog(edge(Math.max(...live.map((h) => h.last)) + 1), true)
    if (xMax / xMin < 10) {
      const mid = Math.sqrt(xMin * xMax)
      xMin = Math.max(LOG_BASE_MS, niceLog(mid / 3.2, false))
      xMax = niceLog(Math.max(mid * 3.2, xMin * 10), true)
    }
  }
  let maxShare = 0
  for (const h of live) for (let b = h.first; b <= h.last; b++) maxShare = Math.max(maxShare, (h.counts[b] / h.n) * 100)
  const yTicks = live.length ? niceTicks(0, maxShare, 5) : [0, 25, 50, 75, 100]

  const band = live.length ? 22 : 0
  const plot = layout({ ...opts, legendRows: legend.rows, band, yTickLabels: tickLabels(yTicks), yLabel, xLabel, lastXLabel: formatLogTick(xMax) })
  const lx0 = Math.log10(xMin)
  const lx1 = Math.log10(xMax)
  const sx = (v) => plot.left + ((Math.log10(Math.min(xMax, Math.max(v, xMin))) - lx0) / (lx1 - lx0)) * plot.w
  const sy = linear(yTicks[0], yTicks.at(-1), plot.bottom, plot.top)

  let body = legend.svg + '\n' + yAxis(plot, yTicks, sy, yLabel) + '\n' + logXAxis(plot, xMin, xMax, sx) + '\n'
  if (xLabel) body += axisLabelX(plot, xLabel) + '\n'
  if (!live.length) return svgDocument(opts, body + frame(plot) + noData(plot))

  for (const h of hists) if (h.n) body += stepLine(h, sx, sy, plot) + '\n'
  body += frame(plot) + '\n'
  body += percentileMarkers(live, sx, plot)
  return svgDocument(opts, body)
}

function logXAxis (plot, min, max, sx) {
  let svg = ''
  for (const t of logTicks(min, max, sx)) {
    if (t.major) svg += el('line', { x1: t.x, y1: plot.top, x2: t.x, y2: plot.bottom, stroke: GRID, 'stroke-width': 1 })
    svg += el('line', { x1: t.x, y1: plot.bottom, x2: t.x, y2: plot.bottom + (t.label ? 5 : 3), stroke: AXIS, 'stroke-width': 1 })
    if (t.label) svg += text(t.x, plot.bottom + 18, t.label, { 'text-anchor': 'middle', fill: MUTED })
  }
  return svg
}

/** Step outline of one histogram from its first to its last populated bucket. */
function stepLine (h, sx, sy, plot) {
  const y0 = plot.bottom
  let d = `M${n(sx(edge(h.first)))} ${n(y0)}`
  for (let b = h.first; b <= h.last; b++) {
    d += `V${n(sy((h.counts[b] / h.n) * 100))}H${n(sx(edge(b + 1)))}`
  }
  d += `V${n(y0)}`
  return el('path', { d: d + 'Z', fill: h.colour, 'fill-opacity': '0.07', stroke: 'none' }) +
    el('path', { d, fill: 'none', stroke: h.colour, 'stroke-width': 1.75, 'stroke-linejoin': 'round' })
}

/** p50/p99 of each series: dashed line through the plot, label in a band above it. */
function percentileMarkers (live, sx, plot) {
  const size = 10
  const marks = []
  for (const h of live) {
    for (const [p, v] of [['p50', h.p50], ['p99', h.p99]]) marks.push({ h, p, v, x: sx(v) })
  }
  const gap = 10
  const label = (m, unit) => `${m.p} ${formatValue(m.v)}${unit}`
  const width = (s) => textWidth(s, size, true)
  const place = (unit) => {
    const items = marks.map((m) => ({ x: m.x, label: label(m, unit), w: width(label(m, unit)) }))
    const centres = dodge(items, Math.max(4, plot.left - 24), Math.min(plot.width - 4, plot.right + 24), gap)
    const shift = Math.max(...centres.map((c, i) => Math.abs(c - items[i].x)))
    return { items, centres, shift }
  }
  // with units unless the labels then have to move much further from their lines
  let best = place(' ms')
  if (best.shift > 40) {
    const short = place('')
    if (short.shift < best.shift - 10) best = short
  }
  const { items, centres } = best
  const ty = plot.top - 16
  let svg = ''
  marks.forEach((m, i) => {
    const c = m.h.colour
    svg += el('line', { x1: m.x, y1: plot.top, x2: m.x, y2: plot.bottom, stroke: c, 'stroke-width': 1, 'stroke-dasharray': '4 3', 'stroke-opacity': '0.8' })
    svg += el('line', { x1: centres[i], y1: ty + 3, x2: m.x, y2: plot.top, stroke: c, 'stroke-width': 1, 'stroke-opacity': '0.8' })
    svg += text(centres[i], ty, items[i].label, { 'text-anchor': 'middle', fill: c, 'font-size': size, 'font-weight': 600 })
  })
  return svg
}

// ---------------------------------------------------------------- time series

const finitePoint = (p) => p != null && p.length >= 2 && p[0] !== null && p[1] !== null && Number.isFinite(+p[0]) && Number.isFinite(+p[1])

/**
 * Line chart of values over time, one line per series. Points whose time or
 * value is null/NaN break the line (a gap). The y axis starts at 0 unless
 * there are negative values. Series with at most 60 points also get dots.
 *
 * @param {object} opts
 * @param {string} [opts.title]
 * @param {{ name: string, points: [number, number|null][] }[]} opts.series points are [tSeconds, value]
 * @param {string} [opts.xLabel='time (s)']
 * @param {string} [opts.yLabel]
 * @param {number} [opts.width=720]
 * @param {number} [opts.height=360]
 * @returns {string} SVG document
 */
export function timeSeries ({ title = '', series = [], xLabel = 'time (s)', yLabel = '', width = WIDTH, height = HEIGHT } = {}) {
  const lines = series.map((s, i) => ({ name: String(s?.name ?? `series ${i + 1}`), colour: colour(i), points: Array.from(s?.points ?? []) }))
  let t0 = Infinity; let t1 = -Infinity; let v0 = 0; let v1 = -Infinity
  for (const l of lines) {
    for (const p of l.points) {
      if (!finitePoint(p)) continue
      t0 = Math.min(t0, +p[0]); t1 = Math.max(t1, +p[0])
      v0 = Math.min(v0, +p[1]); v1 = Math.max(v1, +p[1])
    }
  }
  const empty = t1 === -Infinity
  const opts = { width, height, title }
  const legend = lines.length > 1
    ? legendBlock(lines.map((l) => ({ colour: l.colour, label: l.name, muted: !l.points.some(finitePoint) })), opts)
    : { svg: '', rows: 0 }
  const yTicks = empty ? niceTicks(0, 1) : niceTicks(v0, v1, 5)
  const xTicks = empty ? [0, 1, 2, 3, 4, 5] : niceTicks(t0, t1, Math.max(3, Math.round((width - 120) / 90)))
  const plot = layout({ ...opts, legendRows: legend.rows, yTickLabels: tickLabels(yTicks), yLabel, xLabel, lastXLabel: tickLabels(xTicks).at(-1) })
  const sx = linear(xTicks[0], xTicks.at(-1), plot.left, plot.right)
  const sy = linear(yTicks[0], yTicks.at(-1), plot.bottom, plot.top)

  let body = legend.svg + '\n' + yAxis(plot, yTicks, sy, yLabel) + '\n' + linearXAxis(plot, xTicks, sx) + '\n'
  if (xLabel) body += axisLabelX(plot, xLabel) + '\n'
  body += frame(plot, sy(Math.max(0, yTicks[0]))) + '\n'
  if (empty) return svgDocument(opts, body + noData(plot))
  for (const l of lines) body += polyline(l, sx, sy) + '\n'
  return svgDocument(opts, body)
}

function linearXAxis (plot, ticks, sx) {
  const labels = tickLabels(ticks)
  let svg = ''
  ticks.forEach((t, i) => {
    const x = sx(t)
    svg += el('line', { x1: x, y1: plot.top, x2: x, y2: plot.bottom, stroke: GRID, 'stroke-width': 1 })
    svg += el('line', { x1: x, y1: plot.bottom, x2: x, y2: plot.bottom + 5, stroke: AXIS, 'stroke-width': 1 })
    svg += text(x, plot.bottom + 18, labels[i], { 'text-anchor': 'middle', fill: MUTED })
  })
  return svg
}

function polyline (l, sx, sy) {
  let d = ''
  let pen = false
  let dots = ''
  const withDots = l.points.length <= 60
  for (const p of l.points) {
    if (!finitePoint(p)) { pen = false; continue }
    const x = n(sx(+p[0]))
    const y = n(sy(+p[1]))
    d += `${pen ? 'L' : 'M'}${x} ${y}`
    pen = true
    if (withDots) dots += `<circle cx="${x}" cy="${y}" r="2.5" fill="${l.colour}"/>`
  }
  if (!d) return ''
  return el('path', { d, fill: 'none', stroke: l.colour, 'stroke-width': 1.75, 'stroke-linejoin': 'round', 'stroke-linecap': 'round' }) + dots
}

// ---------------------------------------------------------------- bar chart

const isValue = (v) => v !== null && v !== undefined && v !== '' && Number.isFinite(+v)

/**
 * Grouped bar chart: one group per category, one bar per series, the value
 * printed above each bar (below it for negative values; rotated when the bar
 * is too narrow for the label). A null/undefined/NaN value draws no bar and a
 * small grey "n/a" at the baseline. Long category names are shortened with
 * an ellipsis.
 *
 * @param {object} opts
 * @param {string} [opts.title]
 * @param {string[]} opts.categories
 * @param {{ name: string, values: (number|null)[] }[]} opts.series values[i] belongs to categories[i]
 * @param {string} [opts.yLabel]
 * @param {string} [opts.xLabel] optional caption under the category names
 * @param {(v: number) => string} [opts.format] value label format (default: about 3 significant digits)
 * @param {number} [opts.width=720]
 * @param {number} [opts.height=360]
 * @returns {string} SVG document
 */
export function barChart ({ title = '', categories = [], series = [], yLabel = '', xLabel = '', format = formatValue, width = WIDTH, height = HEIGHT } = {}) {
  const bars = series.map((s, i) => ({ name: String(s?.name ?? `series ${i + 1}`), colour: colour(i), values: Array.from(s?.values ?? []) }))
  const cats = Array.from(categories, (c) => String(c ?? ''))
  const nCat = Math.max(cats.length, ...bars.map((b) => b.values.length), 0)
  const vals = bars.flatMap((b) => b.values.slice(0, nCat).filter(isValue).map(Number))
  const opts = { width, height, title }
  const legend = bars.length > 1 ? legendBlock(bars.map((b) => ({ colour: b.colour, label: b.name })), opts, 'square') : { svg: '', rows: 0 }

  const probeTicks = barTicks(vals, height / 2, 20)
  const probe = layout({ ...opts, legendRows: legend.rows, yTickLabels: tickLabels(probeTicks), yLabel, xLabel })
  const geo = barGeometry(probe, nCat, Math.max(1, bars.length))
  const label = (v) => { try { return String(format(v)) } catch { return formatValue(v) } }
  const labelW = Math.max(0, ...vals.map((v) => textWidth(label(v), 10)))
  const rotate = labelW > geo.barW + 4
  const extent = (rotate ? labelW : 10) + 8 // px a value label needs beyond its bar end
  const yTicks = barTicks(vals, probe.h, extent)
  const plot = layout({ ...opts, legendRows: legend.rows, yTickLabels: tickLabels(yTicks), yLabel, xLabel })
  const g = barGeometry(plot, nCat, Math.max(1, bars.length))
  const sy = linear(yTicks[0], yTicks.at(-1), plot.bottom, plot.top)
  const base = sy(0)

  let body = legend.svg + '\n' + yAxis(plot, yTicks, sy, yLabel) + '\n'
  if (xLabel) body += axisLabelX(plot, xLabel) + '\n'
  for (let c = 0; c < nCat; c++) {
    const gx = plot.left + c * g.groupW
    body += text(gx + g.groupW / 2, plot.bottom + 18, fit(cats[c] ?? '', g.groupW - 6, 11), { 'text-anchor': 'middle', fill: INK })
    bars.forEach((b, s) => { body += bar(b.values[c], b.colour, gx + g.offset + s * g.barW, g.barW, sy, base, rotate, label) })
    body += '\n'
  }
  body += frame(plot, base)
  if (!nCat || !bars.length) body += noData(plot)
  return svgDocument(opts, body)
}

function barGeometry (plot, nCat, nSeries) {
  const groupW = plot.w / Math.max(1, nCat)
  const barW = Math.min(72, (groupW * 0.76) / nSeries)
  return { groupW, barW, offset: (groupW - barW * nSeries) / 2 }
}

/** Nice y ticks that include 0 and leave room for the value labels. */
function barTicks (vals, plotH, extent) {
  if (!vals.length) return niceTicks(0, 1)
  const lo = Math.min(0, ...vals)
  const hi = Math.max(0, ...vals)
  for (const k of [1, 1.05, 1.1, 1.2, 1.35, 1.5, 1.75, 2, 2.5, 3]) {
    const span = (hi - lo) || 1
    const ticks = niceTicks(lo - (lo < 0 ? span * (k - 1) : 0), hi + (hi > 0 ? span * (k - 1) : 0) || 1, 5)
    const px = plotH / (ticks.at(-1) - ticks[0])
    const roomTop = (ticks.at(-1) - hi) * px
    const roomBottom = (lo - ticks[0]) * px
    if ((hi <= 0 || roomTop >= extent) && (lo >= 0 || roomBottom >= extent)) return ticks
  }
  return niceTicks(lo, hi || 1, 5)
}

function bar (value, colour, x, w, sy, base, rotate, label) {
  const cx = x + w / 2
  const inner = Math.max(1, w - 2)
  if (!isValue(value)) {
    const attrs = { 'text-anchor': rotate ? 'start' : 'middle', fill: FAINT, 'font-size': 9, 'font-style': 'italic' }
    return rotate
      ? el('text', { ...attrs, transform: `translate(${n(cx + 3)} ${n(base - 4)}) rotate(-90)` }, 'n/a')
      : text(cx, base - 4, 'n/a', attrs)
  }
  const v = +value
  const y = sy(v)
  const top = Math.min(y, base)
  const h = Math.abs(base - y)
  let svg = el('rect', { x: x + 1, y: top, width: inner, height: Math.max(h, v === 0 ? 0 : 0.5), fill: colour })
  const s = label(v)
  if (rotate) {
    const anchor = v < 0 ? 'end' : 'start'
    svg += el('text', { transform: `translate(${n(cx + 3.5)} ${n(v < 0 ? y + 4 : y - 4)}) rotate(-90)`, 'text-anchor': anchor, fill: INK, 'font-size': 10 }, escapeXml(s))
  } else {
    svg += text(cx, v < 0 ? y + 12 : y - 4, s, { 'text-anchor': 'middle', fill: INK, 'font-size': 10 })
  }
  return svg
}
