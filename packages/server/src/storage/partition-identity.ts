import pg from 'pg'
import { ConfigError } from '../config/server-config.js'
import { homePartition } from './partition-placement.js'

/**
 * What each database of a partitioned store says about itself (table `concord_partition`, one
 * row, written at the first start on the partitions): its own id, the whole set of ids, and the
 * primary (where the data that is not a document's lives). A node checks every database it
 * reaches against its configuration before using it, so a URL that points at another partition's
 * database, or a node given another set of partitions than the others (which would place
 * documents elsewhere), is refused instead of splitting documents.
 */
export interface PartitionRecord {
  id: string
  /** The ids of all the partitions, sorted. */
  partitions: string[]
  primary: string
}

export interface PartitionClaim {
  id: string
  /** Sorted. */
  partitions: readonly string[]
  /** The primary another database has named already; null: none known (a first start takes the smallest id). */
  primary: string | null
}

/** An arbitrary constant, apart from the migrations' lock: the lock under which a database's record is read and written. */
const PARTITION_LOCK = 7_205_118_333

const TABLE = `CREATE TABLE IF NOT EXISTS concord_partition (
  one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
  id TEXT NOT NULL,
  partitions TEXT[] NOT NULL,
  primary_id TEXT NOT NULL,
  claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  next_partitions TEXT[]
)`

/**
 * Check the database at `url` against `claim`, writing the record at the first start. Throws a
 * `ConfigError` saying what disagrees; a driver error (PostgreSQL unreachable) as it is.
 */
export async function claimPartition(url: string, claim: PartitionClaim, timeoutMs: number): Promise<PartitionRecord> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs })
  client.on('error', () => undefined)
  await client.connect()
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK])
    await client.query(TABLE)
    const r = await client.query<{ id: string; partitions: string[]; primary_id: string; next_partitions: string[] | null }>('SELECT id, partitions, primary_id, next_partitions FROM concord_partition')
    let record: PartitionRecord
    if (r.rows.length === 0) {
      record = { id: claim.id, partitions: [...claim.partitions], primary: claim.primary ?? claim.partitions[0]! }
      await refuseForeignDocuments(client, url, record)
      await client.query('INSERT INTO concord_partition (id, partitions, primary_id) VALUES ($1, $2, $3)', [record.id, record.partitions, record.primary])
    } else {
      const row = r.rows[0]!
      record = { id: row.id, partitions: [...row.partitions].sort(), primary: row.primary_id }
      if (row.next_partitions !== null) {
        throw new ConfigError(`partition "${row.id}" (${redact(url)}) is being repartitioned from {${record.partitions.join(', ')}} to {${[...row.next_partitions].sort().join(', ')}}: run concord repartition with the new partitions again to finish, then start the nodes with them`)
      }
    }
    await client.query('COMMIT')
    checkRecord(url, record, claim)
    return record
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw err
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** Throws a `ConfigError` when the record says otherwise than the configuration. */
export function checkRecord(url: string, record: PartitionRecord, claim: PartitionClaim): void {
  const where = `the database at ${redact(url)}`
  if (record.id !== claim.id) {
    throw new ConfigError(`${where} is partition "${record.id}" of {${record.partitions.join(', ')}}, but this node names it "${claim.id}": each partition id must be given the URL of its own database (the ids are recorded in the databases at their first start)`)
  }
  if (!sameSet(record.partitions, claim.partitions)) {
    throw new ConfigError(`partition "${record.id}" (${where}) belongs to the partitions {${record.partitions.join(', ')}}, but this node is configured with {${claim.partitions.join(', ')}}: every node must be given the same partitions, or documents would be looked for in the wrong place (to add a partition, see docs/deployment.md, "Partitioned PostgreSQL")`)
  }
  if (claim.primary !== null && record.primary !== claim.primary) {
    throw new ConfigError(`partition "${record.id}" (${where}) names "${record.primary}" the primary partition, another names "${claim.primary}": the databases disagree (were they claimed by different sets of nodes?)`)
  }
}

/**
 * A database that already holds documents (an existing single PostgreSQL becoming a partition)
 * may join only if every one of them belongs to it: the others would be invisible on it, and
 * start empty on their home partition.
 */
async function refuseForeignDocuments(client: pg.Client, url: string, record: PartitionRecord): Promise<void> {
  const tables = (await client.query<{ t: string }>(
    "SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema() AND tablename IN ('concord_updates', 'concord_snapshots', 'concord_versions')")).rows.map(r => r.t)
  if (tables.length === 0) return
  const docs = await client.query<{ doc: string }>(tables.map(t => `SELECT doc FROM ${t}`).join(' UNION '))
  const foreign = docs.rows.map(r => r.doc).filter(doc => homePartition(doc, record.partitions) !== record.id)
  if (foreign.length === 0) return
  const shown = foreign.slice(0, 3).map(d => JSON.stringify(d)).join(', ') + (foreign.length > 3 ? ` and ${foreign.length - 3} more` : '')
  throw new ConfigError(`the database at ${redact(url)} holds ${foreign.length} document(s) that belong to other partitions of {${record.partitions.join(', ')}} (${shown}): move its documents with concord export and concord import (docs/deployment.md, "Partitioned PostgreSQL") before making it partition "${record.id}"`)
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i])
}

/** A connection string without its password, for messages and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return 'postgres://…'
  }
}

/** A database's record as it is, with the set a repartition is moving it to (null: none). */
export interface StoredPartitionRecord extends PartitionRecord {
  next: string[] | null
}

async function withClient<T>(url: string, timeoutMs: number, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs })
  client.on('error', () => undefined)
  await client.connect()
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK])
    await client.query(TABLE)
    const result = await fn(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw err
  } finally {
    await client.end().catch(() => undefined)
  }
}

/** The record of the database at `url` (null: it has none, it was never a partition). */
export async function readPartitionRecord(url: string, timeoutMs = 10_000): Promise<StoredPartitionRecord | null> {
  return withClient(url, timeoutMs, async client => {
    const r = await client.query<{ id: string; partitions: string[]; primary_id: string; next_partitions: string[] | null }>('SELECT id, partitions, primary_id, next_partitions FROM concord_partition')
    const row = r.rows[0]
    return row === undefined ? null : { id: row.id, partitions: [...row.partitions].sort(), primary: row.primary_id, next: row.next_partitions === null ? null : [...row.next_partitions].sort() }
  })
}

/** Write (or replace) the record of the database at `url` (concord repartition). */
export async function writePartitionRecord(url: string, record: StoredPartitionRecord, timeoutMs = 10_000): Promise<void> {
  await withClient(url, timeoutMs, async client => {
    await client.query('DELETE FROM concord_partition')
    await client.query('INSERT INTO concord_partition (id, partitions, primary_id, next_partitions) VALUES ($1, $2, $3, $4)', [record.id, record.partitions, record.primary, record.next])
  })
}
