import { describe, expect, it } from 'vitest'
import { FastHistogram, ServerMetrics, hocuspocusKind } from './metrics.js'
import { quantileMs } from './stats-samples.js'

describe('metrics', () => {
  it('a fast histogram exposes cumulative buckets, +Inf, sum and count in the Prometheus text format', async () => {
    const m = new ServerMetrics({ processMetrics: false })
    m.ack.observe(0.0002)
    m.ack.observe(0.003)
    m.ack.observe(0.003)
    m.ack.observe(20) // beyond the last bound: only +Inf counts it
    const text = await m.text()
    expect(text).toContain('# TYPE concord_ack_latency_seconds histogram')
    expect(text).toContain('concord_ack_latency_seconds_bucket{le="0.00025"} 1')
    expect(text).toContain('concord_ack_latency_seconds_bucket{le="0.0025"} 1')
    expect(text).toContain('concord_ack_latency_seconds_bucket{le="0.005"} 3')
    expect(text).toContain('concord_ack_latency_seconds_bucket{le="10"} 3')
    expect(text).toContain('concord_ack_latency_seconds_bucket{le="+Inf"} 4')
    expect(text).toContain('concord_ack_latency_seconds_count 4')
    expect(text).toMatch(/concord_ack_latency_seconds_sum 20\.0062/)
  })

  it('counts messages and bytes per direction, protocol and kind', async () => {
    const m = new ServerMetrics({ processMetrics: false })
    m.message('in', 'native', 'update', 10)
    m.message('in', 'native', 'update', 5)
    m.message('out', 'y-websocket', 'sync_step2', 7)
    const text = await m.text()
    expect(text).toContain('concord_messages_total{direction="in",protocol="native",kind="update"} 2')
    expect(text).toContain('concord_message_bytes_total{direction="in",protocol="native",kind="update"} 15')
    expect(text).toContain('concord_messages_total{direction="out",protocol="y-websocket",kind="sync_step2"} 1')
    expect(await m.messagesReceived()).toBe(2)
  })

  it('tells a Hocuspocus message\'s kind whole, or from its parts when the routing key is a part of its own', () => {
    const key = Uint8Array.from([3, ...Buffer.from('doc')])
    expect(hocuspocusKind(Uint8Array.from([...key, 0, 2, 1]))).toBe('sync')
    expect(hocuspocusKind(key, Uint8Array.from([1, 5]))).toBe('awareness')
    expect(hocuspocusKind(Uint8Array.from([0]), Uint8Array.from([8, 1]))).toBe('sync_status')
    expect(hocuspocusKind(Uint8Array.from([9]))).toBe('ping')
    expect(hocuspocusKind(key)).toBe('unknown')
  })

  it('estimates quantiles from bucket counts as histogram_quantile does', () => {
    const h = new FastHistogram('x', 'x', [0.001, 0.01, 0.1])
    expect(h).toBeDefined()
    // 10 observations: 5 at or under 1 ms, 4 more under 10 ms, 1 under 100 ms
    const cumulative = [{ le: 0.001, count: 5 }, { le: 0.01, count: 9 }, { le: 0.1, count: 10 }, { le: Infinity, count: 10 }]
    expect(quantileMs(cumulative, 0.5)).toBeCloseTo(1, 5) // the 5th of 10 is the top of the first bucket
    expect(quantileMs(cumulative, 0.7)).toBeCloseTo(1 + 9 * (2 / 4), 5) // 2 of the 4 in (1, 10] ms
    expect(quantileMs(cumulative, 0.99)).toBeCloseTo(10 + 90 * 0.9, 5)
    expect(quantileMs([{ le: 0.001, count: 0 }, { le: Infinity, count: 0 }], 0.5)).toBe(null)
  })
})
