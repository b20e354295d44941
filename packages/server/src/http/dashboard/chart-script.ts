/**
 * Browser code (a script string, inlined into the page) that draws the dashboard's
 * line charts as SVG by hand: no library, no innerHTML.
 *
 * Defines:
 * - `chartGeometry(input)`: pure layout. `input = { width, height, times, series: [{ values }],
 *   integer, minSpanMs }` where `times` are ms epochs, oldest first, and `values[i]` is a number
 *   or null (a gap). Returns the plot box, the y ticks (0 to a rounded maximum), the time ticks
 *   (now, −30 s, −1 min, …) and, per series, an SVG path `d` split at gaps, the isolated points
 *   (drawn as dots) and the last point. A single point, all-zero or all-null data give finite
 *   coordinates.
 * - `drawChart(svg, geometry, text)`: replaces the children of `svg` with the drawing;
 *   `text = { title, description, noData }` become its <title>, <desc> and the empty-chart label.
 * - `formatCompact(n)`: 0.25, 12, 1.5k, 3.2M.
 *
 * Plain ES2020 without template literals (it lives in one).
 */
export const chartScript = String.raw`
var SVG_NS = 'http://www.w3.org/2000/svg'
var TIME_STEPS_MS = [5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 1200e3, 1800e3, 3600e3]

function niceStep(raw) {
  if (!(raw > 0) || !isFinite(raw)) return 1
  var power = Math.pow(10, Math.floor(Math.log10(raw)))
  var f = raw / power
  var n = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10
  return n * power
}

/** 0 to a rounded top at or above max, in count or so steps; integer data gets integer steps. */
function valueScale(max, integer, count) {
  var top = max > 0 && isFinite(max) ? max : 1
  var step = niceStep(top / count)
  if (integer && step < 1) step = 1
  var steps = Math.max(1, Math.ceil(top / step - 1e-9))
  var ticks = []
  for (var i = 0; i <= steps; i++) ticks.push(Number((i * step).toPrecision(12)))
  return { max: steps * step, ticks: ticks }
}

function formatCompact(n) {
  if (n === null || n === undefined || !isFinite(n)) return '–'
  var a = Math.abs(n)
  if (a >= 1e9) return trimNumber(n / 1e9) + 'G'
  if (a >= 1e6) return trimNumber(n / 1e6) + 'M'
  if (a >= 1e4) return trimNumber(n / 1e3) + 'k'
  if (a >= 100) return String(Math.round(n))
  return trimNumber(n)
}

function trimNumber(n) {
  var a = Math.abs(n)
  return String(Number(n.toFixed(a >= 10 ? 1 : 2)))
}

function timeLabel(agoMs) {
  if (agoMs <= 0) return 'now'
  if (agoMs < 60e3) return '\u2212' + Math.round(agoMs / 1000) + ' s'
  return '\u2212' + Number((agoMs / 60e3).toFixed(1)) + ' min'
}

function chartGeometry(input) {
  var width = Math.max(160, Number(input.width) || 0)
  var height = Math.max(100, Number(input.height) || 0)
  var box = { left: 46, right: 14, top: 10, bottom: 24 }
  var x0 = box.left
  var x1 = width - box.right
  var y0 = box.top
  var y1 = height - box.bottom
  var times = input.times || []
  var tEnd = times.length > 0 ? times[times.length - 1] : 0
  var tStart = times.length > 0 ? times[0] : 0
  var span = Math.max(input.minSpanMs || 60e3, tEnd - tStart, 1)
  var tFrom = tEnd - span

  var max = 0
  var any = false
  input.series.forEach(function (s) {
    s.values.forEach(function (v) {
      if (typeof v === 'number' && isFinite(v)) {
        any = true
        if (v > max) max = v
      }
    })
  })
  var scale = valueScale(max, !!input.integer, height < 160 ? 3 : 4)
  function x(t) { return round1(x0 + (t - tFrom) / span * (x1 - x0)) }
  function y(v) { return round1(y1 - Math.max(0, v) / scale.max * (y1 - y0)) }

  var yTicks = scale.ticks.map(function (v) { return { y: y(v), label: formatCompact(v) } })

  var maxTimeTicks = Math.max(2, Math.floor((x1 - x0) / 90))
  var step = TIME_STEPS_MS[TIME_STEPS_MS.length - 1]
  for (var i = 0; i < TIME_STEPS_MS.length; i++) {
    if (span / TIME_STEPS_MS[i] < maxTimeTicks) { step = TIME_STEPS_MS[i]; break }
  }
  var xTicks = []
  for (var ago = 0; ago <= span + 1; ago += step) xTicks.push({ x: x(tEnd - ago), label: timeLabel(ago) })

  var series = input.series.map(function (s) {
    var segments = []
    var current = []
    var last = null
    for (var k = 0; k < times.length; k++) {
      var v = s.values[k]
      if (typeof v === 'number' && isFinite(v)) {
        var p = { x: x(times[k]), y: y(v) }
        current.push(p)
        last = p
      } else if (current.length > 0) {
        segments.push(current)
        current = []
      }
    }
    if (current.length > 0) segments.push(current)
    var d = segments.map(function (seg) {
      return 'M' + seg.map(function (p) { return p.x + ' ' + p.y }).join(' L')
    }).join(' ')
    var dots = segments.filter(function (seg) { return seg.length === 1 }).map(function (seg) { return seg[0] })
    return { d: d, points: segments.reduce(function (n, seg) { return n + seg.length }, 0), dots: dots, last: last }
  })
  return { width: width, height: height, plot: { x0: x0, x1: x1, y0: y0, y1: y1 }, yTicks: yTicks, xTicks: xTicks, series: series, hasData: any }
}

function round1(n) { return Math.round(n * 10) / 10 }

function svgElement(name, attributes, text) {
  var el = document.createElementNS(SVG_NS, name)
  for (var key in attributes) {
    if (Object.prototype.hasOwnProperty.call(attributes, key)) el.setAttribute(key, String(attributes[key]))
  }
  if (text !== undefined) el.textContent = text
  return el
}

function drawChart(svg, g, text) {
  var id = svg.id
  var children = []
  children.push(svgElement('title', { id: id + '-title' }, text.title))
  children.push(svgElement('desc', { id: id + '-desc' }, text.description))
  var p = g.plot
  g.yTicks.forEach(function (t) {
    children.push(svgElement('line', { class: 'grid', x1: p.x0, x2: p.x1, y1: t.y, y2: t.y }))
    children.push(svgElement('text', { x: p.x0 - 6, y: t.y, 'text-anchor': 'end', 'dominant-baseline': 'middle' }, t.label))
  })
  children.push(svgElement('line', { class: 'axis', x1: p.x0, x2: p.x0, y1: p.y0, y2: p.y1 }))
  children.push(svgElement('line', { class: 'axis', x1: p.x0, x2: p.x1, y1: p.y1, y2: p.y1 }))
  g.xTicks.forEach(function (t, i) {
    children.push(svgElement('line', { class: 'axis', x1: t.x, x2: t.x, y1: p.y1, y2: p.y1 + 4 }))
    children.push(svgElement('text', { x: t.x, y: p.y1 + 16, 'text-anchor': i === 0 ? 'end' : 'middle' }, t.label))
  })
  g.series.forEach(function (s, i) {
    if (s.d !== '') children.push(svgElement('path', { class: 'series s' + i, d: s.d }))
    s.dots.forEach(function (pt) { children.push(svgElement('circle', { class: 'dot s' + i, cx: pt.x, cy: pt.y, r: 2.5 })) })
    if (s.last !== null) children.push(svgElement('circle', { class: 'dot s' + i, cx: s.last.x, cy: s.last.y, r: 3 }))
  })
  if (!g.hasData) {
    children.push(svgElement('text', { class: 'nodata', x: (p.x0 + p.x1) / 2, y: (p.y0 + p.y1) / 2, 'text-anchor': 'middle' }, text.noData))
  }
  svg.setAttribute('width', String(g.width))
  svg.setAttribute('height', String(g.height))
  svg.setAttribute('viewBox', '0 0 ' + g.width + ' ' + g.height)
  svg.replaceChildren.apply(svg, children)
}
`
