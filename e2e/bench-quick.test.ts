import { describe, it, expect } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = fileURLToPath(new URL('..', import.meta.url))

// `npm run bench -- --quick` must run to the end and produce a report with charts; its figures
// are not asserted (they depend on the machine): only that every scenario measured every server.
describe('npm run bench -- --quick', () => {
  it('measures Concord, Hocuspocus and the reference server in every scenario and writes a report with charts', { timeout: 480_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'concord-bench-test-'))
    try {
      const out = join(dir, 'report.md')
      const started = Date.now()
      let stderr = ''
      const code = await new Promise<number | null>((resolve, reject) => {
        const child = spawn('npm', ['run', 'bench', '--', '--quick', '--out', out], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] })
        child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
        child.once('error', reject)
        child.once('exit', resolve)
      })
      const seconds = (Date.now() - started) / 1000
      console.log(`npm run bench -- --quick: exit ${code} after ${seconds.toFixed(0)} s`)
      expect(code, stderr.slice(-3000)).toBe(0)
      const md = readFileSync(out, 'utf8')
      // one column per server, in this order
      expect(md).toMatch(/\| scenario \| metric \| Concord \| Hocuspocus [\d.]+ \| y-websocket-server [\d.]+ \|/)
      const rows = md.split('\n').filter(l => l.startsWith('| '))
      const row = (metric: string): string[] => {
        const line = rows.find(l => l.split('|')[2]!.trim() === metric)
        expect(line, `report row "${metric}"`).toBeDefined()
        return line!.split('|').slice(3, -1).map(c => c.trim())
      }
      const number = (cell: string): number => Number(cell.replace(/,/g, ''))
      // every server measured in the scenarios the peers take part in
      for (const metric of ['RSS per connection (KiB)', 'latency p99 (ms)', 'updates/s received per listener (mean)', 'time to converge (s)']) {
        for (const cell of row(metric)) expect(number(cell), `${metric}: ${cell}`).toBeGreaterThan(0)
      }
      // nothing lost, every text equal
      for (const cell of row('lost updates (expected − received)')) expect(cell).toBe('0')
      for (const cell of row('final text matches')) expect(cell).toBe('yes')
      // Concord only: cold load and concurrent connections
      const [cold, ...coldPeers] = row('document received, median (ms)')
      expect(number(cold!)).toBeGreaterThan(0)
      expect(coldPeers).toEqual(['', ''])
      expect(md).toMatch(/\*\*cold load[^|]*\*\* \| txns in the document \| [\d,]+ \| not measured \| not measured \|/)
      const [open] = row('connections open after settle')
      expect(open).toMatch(/^[\d,]+ \/ [\d,]+$/)
      // fan-out: what was sent in the warm-up is counted and reported apart from the measured window
      const block = (title: string): Map<string, string[]> => {
        const start = rows.findIndex(l => l.includes(`**${title}`))
        expect(start, `a ${title} block in the report`).toBeGreaterThanOrEqual(0)
        const end = rows.findIndex((l, i) => i > start && /^\| \*\*/.test(l))
        return new Map(rows.slice(start, end < 0 ? undefined : end).map(l => [l.split('|')[2]!.trim(), l.split('|').slice(3, -1).map(c => c.trim())]))
      }
      const fanout = block('fan-out latency')
      const sent = fanout.get('updates sent')!
      const warmSent = fanout.get('of which in the warm-up (first 0.5 s)')
      expect(warmSent, 'a warm-up row in the fan-out block').toBeDefined()
      warmSent!.forEach((cell, i) => {
        expect(number(cell)).toBeGreaterThan(0)
        expect(number(cell)).toBeLessThan(number(sent[i]!))
      })
      for (const cell of fanout.get('warm-up (first 0.5 s): p50 / p99 (ms)')!) expect(cell).toMatch(/^\d+\.\d \/ \d+\.\d$/)
      for (const cell of fanout.get('whole run, warm-up included: p50 / p99 (ms)')!) expect(cell).toMatch(/^\d+\.\d \/ \d+\.\d$/)
      for (const cell of fanout.get('load-generator event-loop delay p99, worst worker (ms)')!) expect(number(cell)).toBeGreaterThanOrEqual(0)
      // cross-node: Concord and Hocuspocus as two nodes on Redis (Concord also on PostgreSQL);
      // the reference server has no multi-node mode
      const start = rows.findIndex(l => l.includes('**cross-node latency'))
      expect(start, 'a cross-node block in the report').toBeGreaterThanOrEqual(0)
      const end = rows.findIndex((l, i) => i > start && /^\| \*\*/.test(l))
      const cross = new Map(rows.slice(start, end < 0 ? undefined : end).map(l => [l.split('|')[2]!.trim(), l.split('|').slice(3, -1).map(c => c.trim())]))
      expect(cross.get('updates sent')![2]).toBe('not measured (no multi-node mode)')
      expect(cross.get('lost updates (expected − received)')!.slice(0, 2)).toEqual(['0', '0'])
      for (const cell of cross.get('latency p99 (ms)')!.slice(0, 2)) expect(number(cell)).toBeGreaterThan(0)
      expect(md).not.toContain('error:')
      // the charts the report links to exist and hold drawn data
      const charts = [...md.matchAll(/!\[[^\]]*\]\(([^)]+\.svg)\)/g)].map(m => m[1]!)
      expect(charts.length).toBeGreaterThanOrEqual(7)
      for (const file of charts) {
        const svg = readFileSync(join(dir, file), 'utf8')
        expect(svg.startsWith('<svg')).toBe(true)
        expect(svg).toMatch(/<path|<rect/)
        expect(svg).not.toMatch(/NaN|undefined/)
      }
      expect(readdirSync(dir).filter(f => f.endsWith('.svg')).length).toBe(charts.length)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
