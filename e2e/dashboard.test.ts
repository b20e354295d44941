import { describe, it, expect, beforeAll, afterEach } from 'vitest'
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { createServer as createHttpServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { createServer, type ConcordServer } from '@concord/server'
import { createRedisBackplane } from '@concord/server/backplane/redis'
import { createNodeDirectory } from '@concord/server/backplane/node-directory'
import type { ConcordClient } from '@concord/client'
import { connectClient, startServer, waitFor, type RunningServer } from './helpers.js'
import { CHROMIUM, CHROMIUM_ARGS, requireChromium } from './chromium.js'
import { startRedis, type RedisServer } from './services/redis.js'

// Debian's Chromium, driven by playwright-core, as in browser-client.test.ts
const ADMIN_TOKEN = 'dashboard-admin-token-0123456789'
const SCREENSHOTS = 'test-results'
const NOTES = 'dashboard-notes'
// a user-controlled name that would run if the page inserted it as HTML (the page shows it as text,
// and the CSP would refuse the inline handler too)
const HOSTILE = '<img src=x onerror="window.__xss=1">plan & "budget"'

/** Per test: what to close and remove afterwards. */
const clients: ConcordClient[] = []
const servers: (RunningServer | ConcordServer)[] = []
let context: BrowserContext | null = null
let profileDir: string | null = null

beforeAll(() => {
  requireChromium('the dashboard test')
})

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  if (context !== null) {
    const closing = context.close()
    context = null
    await Promise.race([closing, new Promise((_, reject) => setTimeout(() => reject(new Error('closing Chromium took over 20 s')), 20_000).unref())])
  }
  for (const s of servers.splice(0)) await s.close()
  if (profileDir !== null) rmSync(profileDir, { recursive: true, force: true })
  profileDir = null
})

/** What /metrics says right now, read the plain way (independently of the page's parser). */
async function scrape(origin: string): Promise<{ connections: number; sessions: number; documents: number; updates: number; refusals: number; rssMiB: number }> {
  const text = await (await fetch(`${origin}/metrics`)).text()
  const sum = (name: string): number => text.split('\n')
    .filter(line => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .reduce((n, line) => n + Number(line.slice(line.lastIndexOf(' ') + 1)), 0)
  return {
    connections: sum('concord_connections'),
    sessions: sum('concord_sessions'),
    documents: sum('concord_documents_loaded'),
    updates: sum('concord_updates_applied_total'),
    refusals: sum('concord_refused_total'),
    rssMiB: sum('process_resident_memory_bytes') / 1048576,
  }
}

/** The numbers the tiles show, as a user reads them ("1,234" is 1234). */
async function tiles(page: Page): Promise<{ connections: number; sessions: number; documents: number; updates: number; refusals: number; rssMiB: number }> {
  const read = async (name: string): Promise<number> => {
    const text = (await page.locator(`[data-tile="${name}"]`).textContent()) ?? ''
    return /^[\d,.]+$/.test(text) ? Number(text.replace(/,/g, '')) : NaN
  }
  return {
    connections: await read('connections'), sessions: await read('sessions'), documents: await read('documents'),
    updates: await read('updates'), refusals: await read('refusals'), rssMiB: await read('rss'),
  }
}

/** The tiles equal what the test scrapes from /metrics (the page polls every 2 s, so give it a few). */
async function tilesMatchMetrics(page: Page, origin: string, expected: { connections: number; sessions: number; documents: number }): Promise<void> {
  let last = ''
  await waitFor(async () => {
    const [shown, metrics] = [await tiles(page), await scrape(origin)]
    last = `tiles ${JSON.stringify(shown)}, /metrics ${JSON.stringify(metrics)}`
    return shown.connections === metrics.connections && shown.sessions === metrics.sessions && shown.documents === metrics.documents &&
      shown.updates === metrics.updates && shown.refusals === metrics.refusals &&
      metrics.connections === expected.connections && metrics.sessions === expected.sessions && metrics.documents === expected.documents &&
      Math.abs(shown.rssMiB - metrics.rssMiB) < Math.max(16, metrics.rssMiB * 0.25)
  }, { timeoutMs: 8_000, intervalMs: 100, message: () => `the tiles to show what /metrics says (${last})` })
}

/** How many points the series of a chart has (path commands), and whether its last dot sits on the y tick labelled `label`. */
function chartState(page: Page, chartId: string, label: string): Promise<{ points: number; lastOnTick: boolean; width: number }> {
  return page.evaluate(([id, tickLabel]) => {
    const svg = document.getElementById(id)!
    const path = svg.querySelector('path.series.s0')
    const points = (path?.getAttribute('d')?.match(/[ML]/g) ?? []).length
    const tick = Array.from(svg.querySelectorAll('text')).find(t => t.textContent === tickLabel)
    const dots = svg.querySelectorAll('circle.dot.s0')
    const last = dots[dots.length - 1]
    const lastOnTick = tick !== undefined && last !== undefined && Math.abs(Number(tick.getAttribute('y')) - Number(last.getAttribute('cy'))) < 1
    return { points, lastOnTick, width: svg.getBoundingClientRect().width }
  }, [chartId, label] as const)
}

/** The size of the page's main regions, and whether anything sticks out sideways. */
function layout(page: Page): Promise<{ regions: Record<string, { width: number; height: number; left: number }>; charts: { left: number; width: number; height: number }[]; scrollWidth: number }> {
  return page.evaluate(() => {
    const box = (el: Element | null): { width: number; height: number; left: number } => {
      const r = el?.getBoundingClientRect()
      return { width: r?.width ?? 0, height: r?.height ?? 0, left: r?.left ?? 0 }
    }
    return {
      regions: {
        header: box(document.querySelector('header.top')),
        tiles: box(document.getElementById('tiles')),
        charts: box(document.getElementById('charts')),
        busiest: box(document.getElementById('busiest')),
      },
      charts: Array.from(document.querySelectorAll('#charts svg')).map(svg => box(svg)),
      scrollWidth: document.documentElement.scrollWidth,
    }
  })
}

async function screenshot(page: Page, file: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true })
  const path = join(SCREENSHOTS, file)
  await page.screenshot({ path, fullPage: true })
  const bytes = statSync(path).size
  expect(bytes, `${path} is ${bytes} bytes: too small to hold the dashboard`).toBeGreaterThan(20_000)
}

describe('the live dashboard (GET /dashboard) in Chromium', () => {
  it('signs in with the admin token, shows what /metrics and /admin/stats say and follows them live, and says when the token is wrong or the server is gone', async () => {
    const started = await startServer({ adminToken: ADMIN_TOKEN })
    servers.push(started)
    const origin = `http://127.0.0.1:${started.port}`

    // 3 clients on 2 documents, with edits
    const [ada, grace, linus] = [connectClient(started.url), connectClient(started.url), connectClient(started.url)]
    clients.push(ada, grace, linus)
    const handles = [ada.open(NOTES), grace.open(NOTES), linus.open(HOSTILE)]
    await Promise.all(handles.map(h => h.whenSynced()))
    handles[0]!.doc.getText('t').insert(0, 'Agenda. ')
    handles[1]!.doc.getText('t').insert(0, 'Minutes. ')
    handles[2]!.doc.getText('t').insert(0, 'Q3 numbers.')
    await waitFor(async () => (await scrape(origin)).updates >= 3, { timeoutMs: 10_000, message: 'the server to apply the 3 edits' })

    // everything the page logs or throws; the only expected entries are the browser's own
    // reports of the 401 (wrong token) and of the refused connections (server stopped)
    const consoleMessages: string[] = []
    const pageErrors: string[] = []
    profileDir = mkdtempSync(join(tmpdir(), 'concord-dashboard-chromium-'))
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000, viewport: { width: 1280, height: 900 },
    })
    // a Content-Security-Policy violation is reported to the console and as an event (the page's own
    // script or style refused by the policy would break it): both are collected
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', e => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`))
    })
    const page = context.pages()[0] ?? await context.newPage()
    page.setDefaultTimeout(10_000)
    page.on('console', m => consoleMessages.push(`${m.type()}: ${m.text()} (${m.location().url})`))
    page.on('pageerror', e => pageErrors.push(e.stack ?? e.message))

    const response = await page.goto(`${origin}/dashboard`)
    const csp = response!.headers()['content-security-policy'] ?? ''
    expect(csp).toMatch(/script-src 'sha256-[^']+'(;|$)/)
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/)
    expect(csp).toContain("frame-ancestors 'none'")
    await expect.poll(() => page.title()).toBe('Concord operations dashboard')

    // a wrong token: the sign-in form stays, with the server's refusal spelled out
    await page.getByLabel('Admin token').fill('not-the-admin-token-at-all')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByRole('alert').filter({ hasText: 'refused this token' }).waitFor()
    expect(await page.getByRole('alert').textContent()).toMatch(/\/admin\/stats answered HTTP 401/)
    expect(await page.locator('#dashboard').isHidden()).toBe(true)
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0)

    // the right token, typed and sent from the keyboard (the form keeps the focus in the field)
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('token')
    await page.keyboard.type(ADMIN_TOKEN)
    await page.keyboard.press('Enter')
    await page.locator('[data-tile="connections"]').filter({ hasText: /^\d/ }).waitFor()
    expect(await page.locator('#signin').isHidden()).toBe(true)

    // the tiles show what /metrics says: 3 connections, 3 sessions, 2 documents, the updates, no refusals
    await tilesMatchMetrics(page, origin, { connections: 3, sessions: 3, documents: 2 })
    expect(await page.locator('#node-id').textContent()).toBe('standalone')
    expect(await page.locator('#updated').textContent()).toMatch(/^updated \d\d:\d\d:\d\d$/)

    // the charts draw lines once the server has two samples or more (one every 2 s), ending at 3 connections
    let connectionsChart = { points: 0, lastOnTick: false, width: 0 }
    await waitFor(async () => {
      connectionsChart = await chartState(page, 'chart-connections', '3')
      return connectionsChart.points >= 3 && connectionsChart.lastOnTick
    }, { timeoutMs: 10_000, intervalMs: 100, message: () => `the connections chart to draw a line ending at 3 (${JSON.stringify(connectionsChart)})` })
    for (const [id, tick] of [['chart-documents', '2'], ['chart-updates', '0'], ['chart-memory', '0']] as const) {
      const state = await chartState(page, id, tick)
      expect(state.points, `${id} has a drawn series`).toBeGreaterThanOrEqual(3)
    }
    // every chart says what it shows, to a screen reader too
    const labels = await page.evaluate(() => Array.from(document.querySelectorAll('#charts svg')).map(svg => ({
      role: svg.getAttribute('role'),
      title: svg.querySelector('title')?.textContent ?? '',
      desc: svg.querySelector('desc')?.textContent ?? '',
      labelledBy: (svg.getAttribute('aria-labelledby') ?? '').split(' ').every((id: string) => document.getElementById(id)?.closest('svg') === svg),
      timeAxis: Array.from(svg.querySelectorAll('text')).some(t => t.textContent === 'now'),
    })))
    expect(labels.map(l => l.title.replace(/ over the last .*/, ''))).toEqual(['Connections', 'Updates per second', 'Ack latency', 'Documents loaded', 'Memory'])
    for (const l of labels) expect(l).toMatchObject({ role: 'img', labelledBy: true, timeAxis: true, desc: expect.stringMatching(/samples\.$/) })
    expect(labels[0]!.desc).toMatch(/^connections: now 3,/)
    // the two-series charts have a legend
    expect(await page.locator('figure', { hasText: 'Ack latency' }).locator('.legend li').allTextContents()).toEqual([expect.stringMatching(/^p50 /), expect.stringMatching(/^p99 /)])
    expect(await page.locator('figure', { hasText: 'Memory' }).locator('.legend li').allTextContents()).toEqual([expect.stringMatching(/^RSS [\d.]+ MiB$/), expect.stringMatching(/^heap used [\d.]+ MiB$/)])

    // the busiest rooms: both documents, the hostile name shown as text
    const table = page.getByRole('table')
    await waitFor(async () => (await table.locator('tbody tr').count()) === 2, { timeoutMs: 10_000, message: 'the busiest-rooms table to list 2 rooms' })
    expect(await table.locator('thead th').allTextContents()).toEqual(['Room', 'Sessions', 'Updates/s', 'Size'])
    const rows = await table.locator('tbody tr').evaluateAll(trs => trs.map(tr => Array.from(tr.children).map(c => c.textContent)))
    expect(new Map(rows.map(r => [r[0], r[1]]))).toEqual(new Map([[NOTES, '2'], [HOSTILE, '1']]))
    for (const r of rows) expect(r[3]).toMatch(/^[\d,.]+ (B|KiB|MiB)$/)
    expect(await table.locator('img').count()).toBe(0)
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined()

    // desktop: every region has a size, nothing sticks out sideways
    const desktop = await layout(page)
    for (const [name, r] of Object.entries(desktop.regions)) expect(r.width * r.height, `${name} has a size`).toBeGreaterThan(0)
    for (const c of desktop.charts) expect(c.width * c.height).toBeGreaterThan(0)
    expect(new Set(desktop.charts.map(c => Math.round(c.left))).size, 'charts side by side at 1280 px').toBeGreaterThan(1)
    expect(desktop.scrollWidth).toBeLessThanOrEqual(1280)
    await screenshot(page, 'dashboard.png')

    // phone: one column, the charts redrawn to the narrow width
    await page.setViewportSize({ width: 390, height: 844 })
    await waitFor(async () => (await chartState(page, 'chart-connections', '3')).width <= 370, { timeoutMs: 5_000, message: 'the charts to redraw at phone width' })
    const phone = await layout(page)
    for (const [name, r] of Object.entries(phone.regions)) expect(r.width * r.height, `${name} has a size on a phone`).toBeGreaterThan(0)
    expect(new Set(phone.charts.map(c => Math.round(c.left))).size, 'one column of charts on a phone').toBe(1)
    expect(phone.scrollWidth, 'nothing wider than the phone').toBeLessThanOrEqual(390)
    await screenshot(page, 'dashboard-phone.png')
    await page.setViewportSize({ width: 1280, height: 900 })

    // live: a client leaves, the tile follows /metrics within a few seconds, the line ends at 2
    linus.close()
    await tilesMatchMetrics(page, origin, { connections: 2, sessions: 2, documents: (await scrape(origin)).documents })
    await waitFor(async () => (await chartState(page, 'chart-connections', '2')).lastOnTick,
      { timeoutMs: 8_000, intervalMs: 100, message: 'the connections chart to end at 2' })

    // a reload keeps the token (sessionStorage): no form, straight to the figures
    await page.reload()
    await page.locator('[data-tile="connections"]').filter({ hasText: /^\d/ }).waitFor()
    expect(await page.locator('#signin').isHidden()).toBe(true)

    // the server goes away: a banner says so and the page keeps trying; it comes back on the same port
    await started.close()
    servers.splice(servers.indexOf(started), 1)
    const banner = page.locator('#banner')
    await banner.filter({ hasText: /cannot be reached/ }).waitFor({ timeout: 8_000 })
    expect(await banner.textContent()).toMatch(/^Disconnected: the server cannot be reached; retrying every 2 s \(the figures below are from \d\d:\d\d:\d\d\)\.$/)
    expect(await page.locator('[data-tile="connections"]').textContent()).toBe('2')
    const again = createServer({ auth: 'none', adminToken: ADMIN_TOKEN })
    servers.push(again)
    await again.listen(started.port, '127.0.0.1')
    await banner.waitFor({ state: 'hidden', timeout: 8_000 })
    // a new server without the clients (they reconnect on their own; count whatever /metrics says)
    await waitFor(async () => {
      const [shown, metrics] = [await tiles(page), await scrape(origin)]
      return shown.connections === metrics.connections && shown.updates === metrics.updates
    }, { timeoutMs: 8_000, intervalMs: 100, message: 'the tiles to follow the restarted server' })

    // sign out: the form again, the token gone from the tab
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByLabel('Admin token').waitFor()
    expect(await page.locator('#dashboard').isHidden()).toBe(true)
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0)
    expect(await page.locator('#signin-message').textContent()).toMatch(/^Signed out/)

    expect(pageErrors).toEqual([])
    expect(consoleMessages.filter(m => /Content Security Policy|CSP violation/.test(m))).toEqual([])
    const unexpected = consoleMessages.filter(m =>
      !/^error: Failed to load resource: the server responded with a status of 401 \(Unauthorized\) \(http:\/\/127\.0\.0\.1:\d+\/admin\/stats\)$/.test(m) &&
      !/^error: Failed to load resource: net::ERR_CONNECTION_REFUSED \(http:\/\/127\.0\.0\.1:\d+\/(admin\/stats|metrics)\)$/.test(m))
    expect(unexpected).toEqual([])
  }, 60_000)

  it('on a two-node cluster: the nodes table shows both nodes, this one marked, with their figures and totals; the regions panel shows the peers\' queue, lag and link', async () => {
    let redis: RedisServer | null = null
    try {
      redis = await startRedis()
      // two nodes on one Redis (the backplane and the node directory), each with a client
      const cluster: RunningServer[] = []
      for (let i = 0; i < 2; i++) {
        const s = await startServer({ adminToken: ADMIN_TOKEN, backplane: createRedisBackplane({ url: redis.url }), nodeDirectory: createNodeDirectory({ url: redis.url }) })
        servers.push(s)
        cluster.push(s)
      }
      const [a, b] = cluster as [RunningServer, RunningServer]
      const idOf = async (s: RunningServer): Promise<string> => ((await (await fetch(`http://127.0.0.1:${s.port}/admin/stats`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as { node: string }).node
      const [idA, idB] = [await idOf(a), await idOf(b)]
      const onA = connectClient(a.url)
      const onB = [connectClient(b.url), connectClient(b.url)]
      clients.push(onA, ...onB)
      await Promise.all([onA.open(NOTES), ...onB.map(c => c.open(NOTES))].map(h => h.whenSynced()))

      profileDir = mkdtempSync(join(tmpdir(), 'concord-dashboard-chromium-'))
      context = await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000, viewport: { width: 1280, height: 900 } })
      const violations: string[] = []
      await context.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', e => console.error(`CSP violation: ${e.violatedDirective}`))
      })
      const page = context.pages()[0] ?? await context.newPage()
      page.setDefaultTimeout(10_000)
      page.on('console', m => { if (/CSP violation|Content Security Policy/.test(m.text())) violations.push(m.text()) })
      const pageErrors: string[] = []
      page.on('pageerror', e => pageErrors.push(e.stack ?? e.message))
      // this region's replication as /admin/stats would report it with --region and a peer (the
      // server side is covered in cluster-views.test.ts): the real answer, with `regions` set
      await page.route('**/admin/stats', async route => {
        const response = await route.fetch()
        const body = await response.json() as Record<string, unknown>
        body.regions = { name: 'eu', peers: [
          { peer: 'us', queued: 12, lagSeconds: 3.5, linkUp: false, shippingNode: idB },
          { peer: 'ap', queued: 0, lagSeconds: 0, linkUp: true, shippingNode: idA },
        ] }
        await route.fulfill({ response, json: body })
      })
      await page.goto(`http://127.0.0.1:${a.port}/dashboard`)
      await page.getByLabel('Admin token').fill(ADMIN_TOKEN)
      await page.getByRole('button', { name: 'Sign in' }).click()

      // the nodes table: a row per node, node A (which serves the page) marked, B's 2 connections
      const nodes = page.getByRole('table', { name: /Every live node/ })
      const rowsOf = (): Promise<string[][]> => nodes.locator('tbody tr').evaluateAll(trs => trs.map(tr => Array.from(tr.children).map(c => c.textContent ?? '')))
      let rows: string[][] = []
      await waitFor(async () => {
        rows = await rowsOf()
        return rows.length === 2 && rows.some(r => r[0]!.startsWith(idB) && r[1] === '2') && rows.some(r => r[0]!.startsWith(idA) && r[1] === '1')
      }, { timeoutMs: 15_000, intervalMs: 200, message: () => `the nodes table to show both nodes with their connections (${JSON.stringify(rows)})` })
      expect(await nodes.locator('thead th').allTextContents()).toEqual(['Node', 'Connections', 'Sessions', 'Documents', 'Updates/s', 'CPU', 'Loop delay', 'Memory', 'Up', 'Version', 'Address'])
      const marked = await nodes.locator('tbody tr.self th').allTextContents()
      expect(marked).toEqual([`${idA}this node`])
      const rowB = rows.find(r => r[0]!.startsWith(idB))!
      expect(rowB[0]).toBe(idB)
      expect(rowB[2]).toBe('2')
      expect(rowB[7]).toMatch(/^[\d.]+ MiB$/)
      expect(rowB[10]).toBe(`http://127.0.0.1:${b.port}`)
      await waitFor(async () => (await nodes.locator('tfoot tr').allTextContents())[0]?.startsWith('All 2 nodes33'), { timeoutMs: 10_000, message: 'the totals row: 2 nodes, 3 connections, 3 sessions' })
      expect(await page.locator('#node-id').textContent()).toBe(idA)

      // the regions panel: each peer's queue, lag and link
      const regions = page.getByRole('table', { name: /region eu/ })
      const regionRows = await regions.locator('tbody tr').evaluateAll(trs => trs.map(tr => Array.from(tr.children).map(c => c.textContent ?? '')))
      expect(regionRows).toEqual([['us', '12', '3.5 s', 'down', idB], ['ap', '0', '0.0 s', 'up', idA]])
      expect(await regions.locator('td[data-link="down"]').getAttribute('class')).toBe('link-down')

      // nothing sticks out sideways on a phone: the tables scroll in their own frame
      await page.setViewportSize({ width: 390, height: 844 })
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
      await page.setViewportSize({ width: 1280, height: 900 })
      await screenshot(page, 'dashboard-cluster.png')

      // node B stops: its row goes (a graceful close leaves the directory at once)
      await b.close()
      servers.splice(servers.indexOf(b), 1)
      await waitFor(async () => (await rowsOf()).length === 1, { timeoutMs: 10_000, intervalMs: 200, message: 'the stopped node\'s row to go' })
      expect(pageErrors).toEqual([])
      expect(violations).toEqual([])
    } finally {
      await redis?.stop()
    }
  }, 90_000)

  it('markup an attacker got into the page cannot run script, and no other site can frame the page', async () => {
    const started = await startServer({ adminToken: ADMIN_TOKEN })
    servers.push(started)
    const origin = `http://127.0.0.1:${started.port}`
    // the attacker's site, on another origin, frames the dashboard (clickjacking)
    const attacker: Server = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><title>attacker</title><iframe id="victim" src="${origin}/dashboard"></iframe>`)
    })
    await new Promise<void>(resolve => attacker.listen(0, '127.0.0.1', resolve))
    try {
      profileDir = mkdtempSync(join(tmpdir(), 'concord-dashboard-chromium-'))
      context = await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 })
      const violations: string[] = []
      await context.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', e => console.error(`CSP violation: ${e.violatedDirective}`))
      })
      const page = context.pages()[0] ?? await context.newPage()
      page.setDefaultTimeout(10_000)
      page.on('console', m => { if (/CSP violation|Content Security Policy/.test(m.text())) violations.push(m.text()) })
      await page.goto(`${origin}/dashboard`)
      await page.getByLabel('Admin token').waitFor()

      // what an injection would add: an inline script and an inline event handler
      await page.evaluate(() => {
        const script = document.createElement('script')
        script.textContent = 'window.__injected = "script"'
        document.body.append(script)
        const div = document.createElement('div')
        div.innerHTML = '<img src="data:," onload="window.__injected = \'handler\'" onerror="window.__injected = \'handler\'">'
        document.body.append(div)
      })
      await waitFor(() => violations.filter(v => /CSP violation: script-src/.test(v)).length >= 2, { timeoutMs: 10_000, message: () => `the browser to refuse both injected scripts (${JSON.stringify(violations)})` })
      expect(await page.evaluate(() => (window as unknown as { __injected?: string }).__injected)).toBeUndefined()
      // the page's own script still runs: the sign-in form works
      await page.getByLabel('Admin token').fill('not-the-admin-token-at-all')
      await page.getByRole('button', { name: 'Sign in' }).click()
      await page.getByRole('alert').filter({ hasText: 'refused this token' }).waitFor()

      // framed by another origin: the browser refuses to show it (its error page takes the frame's place)
      const framing = await context.newPage()
      const refusals: string[] = []
      framing.on('console', m => { if (/frame-ancestors/.test(m.text())) refusals.push(m.text()) })
      await framing.goto(`http://127.0.0.1:${(attacker.address() as { port: number }).port}/`)
      await waitFor(() => refusals.length > 0 && framing.frames().some(f => f.url().startsWith('chrome-error:')),
        { timeoutMs: 10_000, message: () => `the framed dashboard to be refused (frames: ${framing.frames().map(f => f.url()).join(', ')})` })
      expect(framing.frames().map(f => f.url())).not.toContain(`${origin}/dashboard`)
    } finally {
      await new Promise<void>(resolve => { attacker.closeAllConnections(); attacker.close(() => resolve()) })
    }
  }, 60_000)
})
