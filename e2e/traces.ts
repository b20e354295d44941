import { existsSync, readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

/** A sequential editing trace of ../shared/traces (CC BY 4.0; see docs/benchmarks.md for credits). */
export interface SequentialTrace {
  name: string
  startContent: string
  endContent: string
  txns: { patches: [number, number, string][] }[]
}

export function loadTrace(name: string): SequentialTrace {
  const dir = process.env.CONCORD_TRACES_DIR ?? fileURLToPath(new URL('../../shared/traces', import.meta.url))
  const path = join(dir, `${name}.json.gz`)
  if (!existsSync(path)) {
    throw new Error(`editing trace missing: ${path} (the repository expects ../shared/traces next to it; or set CONCORD_TRACES_DIR)`)
  }
  return JSON.parse(gunzipSync(readFileSync(path)).toString('utf8')) as SequentialTrace
}
