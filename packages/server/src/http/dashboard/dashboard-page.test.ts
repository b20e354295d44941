import { describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import { DASHBOARD_CSP, dashboardHtml } from './dashboard-page.js'
import { chartScript } from './chart-script.js'
import { metricsTextScript } from './metrics-text-script.js'

interface Parsed { samples: { name: string; labels: Record<string, string>; value: number }[]; types: Record<string, string> }
interface Geometry {
  width: number
  height: number
  plot: { x0: number; x1: number; y0: number; y1: number }
  yTicks: { y: number; label: string }[]
  xTicks: { x: number; label: string }[]
  series: { d: string; points: number; dots: { x: number; y: number }[]; last: { x: number; y: number } | null }[]
  hasData: boolean
}

// the browser code, run here as the page runs it (the test is Node: no CSP)
const metricsText = new Function(`${metricsTextScript}\nreturn { parseMetricsText, metricSum }`)() as {
  parseMetricsText(text: string): Parsed
  metricSum(parsed: Parsed, name: string, labels?: Record<string, string>): number | null
}
const chart = new Function(`${chartScript}\nreturn { chartGeometry, formatCompact }`)() as {
  chartGeometry(input: { width: number; height: number; times: number[]; series: { values: (number | null)[] }[]; integer?: boolean; minSpanMs?: number }): Geometry
  formatCompact(n: number | null): string
}

const EXPOSITION = `# HELP concord_connections Open WebSocket connections, by protocol.
# TYPE concord_connections gauge
concord_connections{protocol="native"} 2
concord_connections{protocol="y-websocket"} 1
# TYPE concord_refused_total counter
concord_refused_total{code="CONCORD_ERR_RATE_LIMITED"} 3
concord_refused_total{code="CONCORD_ERR_AUTH_DENIED",note="a \\"quoted\\", {braced} value\\\\"} 4
# HELP concord_updates_applied_total Client updates that changed a document.
# TYPE concord_updates_applied_total counter
# TYPE concord_ack_seconds histogram
concord_ack_seconds_bucket{le="0.001"} 5
concord_ack_seconds_bucket{le="+Inf"} 7
process_resident_memory_bytes 72278016 1700000000000
`

function finiteEverywhere(g: Geometry): boolean {
  return !/NaN|Infinity/.test(JSON.stringify(g))
}

describe('the dashboard page', () => {
  it('is one self-contained document: one inline style, one inline script that parses, nothing loaded from elsewhere', () => {
    const html = dashboardHtml()
    expect(html.startsWith('<!doctype html>')).toBe(true)
    expect(html.match(/<style>/g)).toHaveLength(1)
    expect(html.match(/<script>/g)).toHaveLength(1)
    expect(html).not.toMatch(/<script[^>]*\ssrc=/)
    expect(html).not.toMatch(/<link(?![^>]*href="data:)[^>]*>/)
    expect(html).not.toMatch(/\son[a-z]+="/) // no inline event handlers
    expect(html).not.toMatch(/innerHTML|insertAdjacentHTML|outerHTML|document\.write|eval\(/)
    const script = /<script>([\s\S]*)<\/script>/.exec(html)![1]!
    expect(script).not.toMatch(/<\/script/i)
    expect(() => new Function(script)).not.toThrow()
  })

  it('runs under a CSP without \'unsafe-inline\': its one script and its one style are allowed by their hashes, nothing else is', () => {
    const html = dashboardHtml()
    const hash = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`
    const script = /<script>([\s\S]*)<\/script>/.exec(html)![1]!
    const style = /<style>([\s\S]*)<\/style>/.exec(html)![1]!
    const directives = new Map(DASHBOARD_CSP.split('; ').map(d => [d.split(' ')[0]!, d.split(' ').slice(1)]))
    expect(directives.get('script-src')).toEqual([hash(script)])
    expect(directives.get('style-src')).toEqual([hash(style)])
    expect(directives.get('default-src')).toEqual(["'none'"])
    expect(directives.get('frame-ancestors')).toEqual(["'none'"])
    expect(DASHBOARD_CSP).not.toMatch(/unsafe-/)
  })
})

describe('parseMetricsText (the tiles read /metrics with it)', () => {
  const parsed = metricsText.parseMetricsText(EXPOSITION)

  it('sums series, by label where asked', () => {
    expect(metricsText.metricSum(parsed, 'concord_connections')).toBe(3)
    expect(metricsText.metricSum(parsed, 'concord_connections', { protocol: 'y-websocket' })).toBe(1)
    expect(metricsText.metricSum(parsed, 'concord_refused_total')).toBe(7)
    expect(metricsText.metricSum(parsed, 'concord_ack_seconds_bucket', { le: '+Inf' })).toBe(7)
    expect(metricsText.metricSum(parsed, 'process_resident_memory_bytes')).toBe(72278016)
  })

  it('reads escaped label values', () => {
    const denied = parsed.samples.find(s => s.labels.code === 'CONCORD_ERR_AUTH_DENIED')
    expect(denied?.labels.note).toBe('a "quoted", {braced} value\\')
    expect(denied?.value).toBe(4)
  })

  it('gives 0 for a declared counter without series, null for what /metrics does not have', () => {
    expect(metricsText.metricSum(parsed, 'concord_updates_applied_total')).toBe(0)
    expect(metricsText.metricSum(parsed, 'concord_sessions')).toBeNull()
  })
})

describe('chartGeometry (the charts are drawn from it)', () => {
  const base = { width: 500, height: 200, minSpanMs: 60_000 }

  it('draws a single point as a dot at the right edge, with finite coordinates', () => {
    const g = chart.chartGeometry({ ...base, times: [1_000_000], series: [{ values: [3] }], integer: true })
    expect(finiteEverywhere(g)).toBe(true)
    expect(g.series[0]!.points).toBe(1)
    expect(g.series[0]!.dots).toHaveLength(1)
    expect(g.series[0]!.last?.x).toBe(g.plot.x1)
    expect(g.yTicks.map(t => t.label)).toEqual(['0', '1', '2', '3'])
    expect(g.xTicks[0]!.label).toBe('now')
  })

  it('puts all-zero data on the baseline of a 0..1 axis', () => {
    const g = chart.chartGeometry({ ...base, times: [0, 2000, 4000], series: [{ values: [0, 0, 0] }] })
    expect(finiteEverywhere(g)).toBe(true)
    expect(g.hasData).toBe(true)
    expect(g.yTicks[0]!.label).toBe('0')
    expect(g.yTicks[g.yTicks.length - 1]!.label).toBe('1')
    expect(g.series[0]!.d).toMatch(/^M[\d. ]+ L[\d. ]+ L[\d. ]+$/)
    expect(g.series[0]!.last?.y).toBe(g.plot.y1)
  })

  it('leaves gaps at null values, and says when there is nothing to draw', () => {
    const g = chart.chartGeometry({ ...base, times: [0, 2000, 4000, 6000, 8000], series: [{ values: [1, 2, null, 4, null] }, { values: [null, null, null, null, null] }] })
    expect(finiteEverywhere(g)).toBe(true)
    expect(g.series[0]!.d.match(/M/g)).toHaveLength(2)
    expect(g.series[0]!.points).toBe(3)
    expect(g.series[0]!.dots).toHaveLength(1) // the lone 4
    expect(g.series[1]!.d).toBe('')
    const empty = chart.chartGeometry({ ...base, times: [0, 2000], series: [{ values: [null, null] }] })
    expect(empty.hasData).toBe(false)
    expect(finiteEverywhere(empty)).toBe(true)
  })

  it('labels the time axis back from now and keeps the last ten minutes readable', () => {
    const times = Array.from({ length: 300 }, (_, i) => i * 2000)
    const g = chart.chartGeometry({ ...base, width: 900, times, series: [{ values: times.map(t => t / 1000) }] })
    expect(g.xTicks.map(t => t.label)).toEqual(['now', '−2 min', '−4 min', '−6 min', '−8 min'])
    expect(g.yTicks.length).toBeLessThanOrEqual(6)
  })

  it('formats axis labels compactly', () => {
    expect([0.25, 12, 15_000, 3_200_000, null].map(n => chart.formatCompact(n))).toEqual(['0.25', '12', '15k', '3.2M', '–'])
  })
})
