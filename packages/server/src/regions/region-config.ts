import { redisUrlProblem } from '../backplane/redis-url.js'
import { ConfigError } from '../config/server-config.js'

/** Another region: its PostgreSQL (where this region ships its updates) and its Redis (where they are announced to its nodes). */
export interface PeerRegion {
  name: string
  /** postgres:// URL of the peer's database. */
  postgres: string
  /** redis:// (or redis+cluster://host:port,host:port,…) URL of the peer's backplane. */
  redis: string
}

export interface RegionsConfig {
  /** This region's name (the origin written with everything it ships). */
  name: string
  peers: PeerRegion[]
  /** Rows shipped per batch (default 500). */
  batchSize?: number
  /** How often an empty outbox is read again (default 20 ms). */
  pollMs?: number
  /** The replicator lease per peer: another node of the region takes over this long after its holder died (default 5 s). */
  leaseMs?: number
  /** How long a statement or command on a peer may take before its link counts as down (default 5 s). */
  linkTimeoutMs?: number
}

const REGION_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/i

/** Checks a region name (letters, digits, `.`, `_`, `-`; at most 63). */
export function regionNameProblem(name: string): string | null {
  return REGION_NAME.test(name) ? null : `invalid region name ${JSON.stringify(name)}: use letters, digits, '.', '_' or '-' (at most 63)`
}

/**
 * Reads one `--peer-region` value: `name=postgres://…,redis://…` (the two URLs in either order;
 * the Redis may be a cluster, `redis+cluster://host:port,host:port,…`: a comma starts the next
 * URL only when a scheme follows it). Throws a ConfigError naming what is wrong.
 */
export function parsePeerRegion(text: string): PeerRegion {
  const eq = text.indexOf('=')
  if (eq <= 0) throw new ConfigError(`invalid --peer-region ${JSON.stringify(text)}: use name=postgres://…,redis://…`)
  const name = text.slice(0, eq)
  const problem = regionNameProblem(name)
  if (problem !== null) throw new ConfigError(problem)
  let postgres: string | undefined
  let redis: string | undefined
  for (const part of text.slice(eq + 1).split(/,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i)) {
    const url = part.trim()
    if (/^postgres(ql)?:\/\//.test(url)) postgres = url
    else if (/^rediss?(\+cluster)?:\/\//.test(url)) {
      const problem = redisUrlProblem(url)
      if (problem !== null) throw new ConfigError(`invalid --peer-region ${name}: ${problem}`)
      redis = url
    } else throw new ConfigError(`invalid --peer-region ${name}: ${JSON.stringify(url)} is neither a postgres:// nor a redis:// URL`)
  }
  if (postgres === undefined || redis === undefined) throw new ConfigError(`invalid --peer-region ${name}: give both its postgres:// and its redis:// URL`)
  return { name, postgres, redis }
}

/** Checks a whole configuration: a name, distinct peers, none named as this region. */
export function validateRegions(config: RegionsConfig): RegionsConfig {
  const problem = regionNameProblem(config.name)
  if (problem !== null) throw new ConfigError(problem)
  const seen = new Set<string>()
  for (const p of config.peers) {
    if (p.name === config.name) throw new ConfigError(`--peer-region ${p.name} names this region itself`)
    if (seen.has(p.name)) throw new ConfigError(`--peer-region ${p.name} is given twice`)
    seen.add(p.name)
  }
  return Object.freeze({ ...config, peers: Object.freeze(config.peers.map(p => Object.freeze({ ...p }))) as PeerRegion[] })
}
