import { existsSync } from 'node:fs'

/** Debian's Chromium, driven through playwright-core (never a downloaded browser). */
export const CHROMIUM = '/usr/bin/chromium'
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
]

/** Fails with what to install when Chromium is missing (a browser test is never skipped). */
export function requireChromium(what = 'the browser tests'): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: ${what} need Debian's chromium (run \`node scripts/ensure-system-packages.mjs\` as root, or \`apt-get install chromium\`)`)
  }
}

/** Settle `promise` within `ms`, or fail naming what was awaited (page.evaluate has no timeout of its own). */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
