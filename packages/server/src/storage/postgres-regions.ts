import pg from 'pg'
import * as Y from 'yjs'
import { applyAccessOp, type AccessOp, type AccessState } from './access-store.js'

/**
 * What a region keeps for its peer regions (schema v6 and v7 of the PostgreSQL store): the outbox, one
 * row per appended update (or access change) and peer region, written in the same transaction as
 * the append, so what is acked is what will be shipped; and on the receiving side, the ids it
 * took in (a re-shipped batch is a no-op) and the origin of each replicated log entry.
 */

/** One outbox row: an update appended in this region, or an administrator's access change. */
export interface OutboxEntry {
  /** The outbox id (increasing in commit order for one document, not across documents). */
  id: number
  kind: 'update' | 'access' | 'delete'
  /** For an update: its document, bytes, writer and local log seq. */
  doc: string | null
  data: Uint8Array | null
  userId: string | null
  seq: number | null
  /** The edit's W3C traceparent, sent along to the peer's nodes. */
  trace: string | null
  /** For an access change: the operation and the change to announce. */
  body: AccessOutboxBody | null
  /** ms since the epoch at which it was appended in this region. */
  at: number
}

export interface AccessOutboxBody {
  op: AccessOp
  /** The change the receiving region announces to its nodes (an AccessChange). */
  change: unknown
}

/** A peer's queue in this region's outbox. */
export interface OutboxDepth {
  peer: string
  /** Rows waiting. */
  depth: number
  /** When the oldest waiting row was appended (ms since the epoch), or null when none waits. */
  oldestAt: number | null
}

/** This region's side: its peers and what waits for each. */
export interface RegionOutbox {
  /** Make sure these peers get outbox rows from now on (every node of the region registers the peers it is configured with). */
  registerPeers(peers: string[]): Promise<void>
  /** The oldest rows waiting for `peer`, at most `limit`. */
  read(peer: string, limit: number): Promise<OutboxEntry[]>
  /** An administrator deleted `doc` in this region: every peer deletes it too. */
  queueDelete(doc: string): Promise<void>
  /** Rows shipped to `peer` and committed there. */
  remove(peer: string, ids: number[]): Promise<void>
  depths(): Promise<OutboxDepth[]>
  /**
   * In one snapshot: the outbox's id sequence (every committed row has an id at most this), and
   * per peer the smallest id still waiting (null: none). A row with id <= `last` committed before
   * the read has reached a peer once that peer's `oldest` is above `last` (or null).
   */
  watermark(): Promise<{ last: number; oldest: Map<string, number | null> }>
}

export const OUTBOX_MIGRATION = `
  CREATE TABLE concord_region_peers (
    name TEXT PRIMARY KEY,
    added_at TIMESTAMPTZ NOT NULL DEFAULT now()
  );
  CREATE TABLE concord_outbox (
    id BIGSERIAL PRIMARY KEY,
    peer TEXT NOT NULL,
    kind TEXT NOT NULL,
    doc TEXT,
    data BYTEA,
    user_id TEXT,
    seq BIGINT,
    body JSONB,
    trace TEXT,
    at BIGINT NOT NULL
  );
  CREATE INDEX concord_outbox_peer_id ON concord_outbox (peer, id);
  CREATE TABLE concord_region_inbox (
    origin TEXT NOT NULL,
    id BIGINT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (origin, id)
  );
  CREATE INDEX concord_region_inbox_at ON concord_region_inbox (at);
  ALTER TABLE concord_updates ADD COLUMN origin TEXT;
  -- One call takes in a batch of updates from a peer region: one round trip across the link
  -- (the statement is its own transaction). The ids it had taken in before are skipped; the new
  -- updates are appended under the per-document locks of the region's own appends, in batch order,
  -- and their writers become the owners of their Yjs client ids where nobody owned them.
  CREATE FUNCTION concord_region_deliver(p_origin TEXT, p_ids BIGINT[], p_docs TEXT[], p_data BYTEA[], p_users TEXT[], p_ats BIGINT[],
      p_author_docs TEXT[], p_author_clients BIGINT[], p_author_users TEXT[], p_now BIGINT, p_keep_ms BIGINT) RETURNS INTEGER AS $fn$
  DECLARE
    fresh BIGINT[];
  BEGIN
    WITH taken AS (
      INSERT INTO concord_region_inbox (origin, id, at) SELECT p_origin, unnest(p_ids), p_now ON CONFLICT DO NOTHING RETURNING id
    ) SELECT array_agg(id) INTO fresh FROM taken;
    DELETE FROM concord_region_inbox WHERE at < p_now - p_keep_ms;
    IF fresh IS NULL THEN RETURN 0; END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(d, 0))
      FROM (SELECT DISTINCT d FROM unnest(p_ids, p_docs) AS u(i, d) WHERE i = ANY(fresh) ORDER BY 1) AS docs;
    INSERT INTO concord_updates (seq, doc, data, user_id, at, origin)
      SELECT nextval('concord_updates_seq'), d, b, u, a, p_origin FROM (
        SELECT d, b, u, a FROM unnest(p_ids, p_docs, p_data, p_users, p_ats) WITH ORDINALITY AS t(i, d, b, u, a, n)
        WHERE i = ANY(fresh) ORDER BY n
      ) AS ordered;
    INSERT INTO concord_authors (doc, client, user_id)
      SELECT * FROM unnest(p_author_docs, p_author_clients, p_author_users) ON CONFLICT (doc, client) DO NOTHING;
    RETURN array_length(fresh, 1);
  END
  $fn$ LANGUAGE plpgsql;`

/**
 * The append statement with an outbox: the log rows, and one outbox row per registered peer, in
 * one statement (the bytes cross the wire once). Returns nothing; seqs are drawn beforehand.
 */
/**
 * Schema v7: `concord_append(docs, data, users, ats, traces, outbox)` appends one batch in one
 * statement (so one round trip, in the statement's own transaction) and returns its sequence numbers
 * in batch order. Per document, appends from every node are serialised until commit (an advisory
 * lock per document, taken in name order, the same on every node, so two batches never deadlock),
 * so a document's seqs are committed in order: whoever reads a document's log sees a prefix of it,
 * never seq 510 without 500 (which compaction, folding "everything up to 510", would otherwise
 * delete unread). With `outbox` (peer regions), one outbox row per registered peer goes in with
 * each log row.
 */
export const APPEND_FUNCTION_MIGRATION = `
  CREATE FUNCTION concord_append(p_docs text[], p_data bytea[], p_users text[], p_ats bigint[], p_traces text[], p_outbox boolean)
  RETURNS bigint[] LANGUAGE plpgsql AS $$
  DECLARE
    seqs bigint[];
  BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(d, 0)) FROM (SELECT DISTINCT unnest(p_docs) AS d ORDER BY 1) AS docs;
    SELECT array_agg(s ORDER BY s) INTO seqs FROM (SELECT nextval('concord_updates_seq') AS s FROM generate_series(1, cardinality(p_docs))) AS g;
    INSERT INTO concord_updates (seq, doc, data, user_id, at)
      SELECT * FROM unnest(seqs, p_docs, p_data, p_users, p_ats);
    IF p_outbox THEN
      INSERT INTO concord_outbox (peer, kind, doc, data, user_id, seq, at, trace)
        SELECT p.name, 'update', t.d, t.b, t.u, t.s, t.a, t.tr
        FROM unnest(seqs, p_docs, p_data, p_users, p_ats, p_traces) AS t(s, d, b, u, a, tr) CROSS JOIN concord_region_peers p;
    END IF;
    RETURN seqs;
  END $$;`

/** An access change goes to every peer, in the transaction that saved it. */
export async function queueAccessChange(client: pg.PoolClient, body: AccessOutboxBody): Promise<void> {
  await client.query(
    `INSERT INTO concord_outbox (peer, kind, body, at) SELECT p.name, 'access', $1, $2 FROM concord_region_peers p`,
    [JSON.stringify(body), Date.now()])
}

type OutboxRow = { id: string; kind: string; doc: string | null; data: Buffer | null; user_id: string | null; seq: string | null; body: AccessOutboxBody | null; trace: string | null; at: string }

export function createRegionOutbox(pool: pg.Pool, open: () => void): RegionOutbox {
  return {
    async registerPeers(peers) {
      open()
      if (peers.length === 0) return
      await pool.query('INSERT INTO concord_region_peers (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING', [peers])
    },
    async read(peer, limit) {
      open()
      const r = await pool.query<OutboxRow>('SELECT id, kind, doc, data, user_id, seq, body, trace, at FROM concord_outbox WHERE peer = $1 ORDER BY id LIMIT $2', [peer, limit])
      return r.rows.map(row => ({
        id: Number(row.id),
        kind: row.kind === 'access' || row.kind === 'delete' ? row.kind : 'update',
        doc: row.doc,
        data: row.data === null ? null : new Uint8Array(row.data.buffer, row.data.byteOffset, row.data.byteLength),
        userId: row.user_id,
        seq: row.seq === null ? null : Number(row.seq),
        body: row.body,
        trace: row.trace,
        at: Number(row.at),
      }) satisfies OutboxEntry)
    },
    async queueDelete(doc) {
      open()
      await pool.query(`INSERT INTO concord_outbox (peer, kind, doc, at) SELECT p.name, 'delete', $1, $2 FROM concord_region_peers p`, [doc, Date.now()])
    },
    async remove(peer, ids) {
      open()
      if (ids.length === 0) return
      await pool.query('DELETE FROM concord_outbox WHERE peer = $1 AND id = ANY($2::bigint[])', [peer, ids])
    },
    async depths() {
      open()
      const r = await pool.query<{ name: string; depth: string; oldest: string | null }>(
        `SELECT p.name, COUNT(o.id) AS depth, MIN(o.at) AS oldest FROM concord_region_peers p
         LEFT JOIN concord_outbox o ON o.peer = p.name GROUP BY p.name ORDER BY p.name`)
      return r.rows.map(row => ({ peer: row.name, depth: Number(row.depth), oldestAt: row.oldest === null ? null : Number(row.oldest) }))
    },
    async watermark() {
      open()
      const r = await pool.query<{ last: string; name: string | null; oldest: string | null }>(
        `SELECT (SELECT last_value FROM concord_outbox_id_seq) AS last, p.name,
           (SELECT MIN(o.id) FROM concord_outbox o WHERE o.peer = p.name) AS oldest
         FROM (SELECT 1) AS one LEFT JOIN concord_region_peers p ON true`)
      const last = Number(r.rows[0]?.last ?? 0)
      const oldest = new Map<string, number | null>()
      for (const row of r.rows) if (row.name !== null) oldest.set(row.name, row.oldest === null ? null : Number(row.oldest))
      return { last, oldest }
    },
  }
}

export interface PeerInboxOptions {
  /** postgres:// URL of the peer region's database. */
  connectionString: string
  /** How long one statement (or getting a connection) may take before the link counts as down (default 5 s). */
  timeoutMs?: number
}

/** What one delivery did in the peer region. */
export interface Delivered {
  /** Entries new to the peer (the others it had taken in before: a re-shipped batch). */
  fresh: number
  /** The updates of this batch, per document, to announce on the peer's Redis (fresh or not: an announcement may have been lost). */
  updates: { doc: string; data: Uint8Array; userId: string | null; trace: string | null }[]
  /** The access changes to announce. */
  changes: unknown[]
  /** Documents deleted (announce them, as an administrator's deletion in the peer is announced). */
  deleted: string[]
}

/** Inbox entries older than this are forgotten (a re-ship happens within seconds; a late one is still harmless: Yjs updates are idempotent). */
const INBOX_KEEP_MS = 24 * 3_600_000

/**
 * A peer region's database, written by this region's replicator: each batch in one transaction,
 * taken in once (its ids recorded per origin), appended to the peer's log under the same
 * per-document locks and sequence as the peer's own appends, with its origin, and never put in
 * the peer's outbox (nothing is shipped on: every region ships its own to every peer).
 */
export class PeerInbox {
  readonly #pool: pg.Pool

  constructor(options: PeerInboxOptions) {
    const timeout = options.timeoutMs ?? 5_000
    this.#pool = new pg.Pool({
      connectionString: options.connectionString, max: 1, connectionTimeoutMillis: timeout,
      // a partition that drops packets must not hold the replicator for ever
      query_timeout: timeout, statement_timeout: timeout, keepAlive: true,
      // the connection is kept open: opening one costs several round trips across the link
      idleTimeoutMillis: 0,
    })
    this.#pool.on('error', () => undefined)
  }

  /** Opens the connection ahead of the first batch (failures are left to the first batch). */
  async warm(): Promise<void> {
    await this.#pool.query('SELECT 1').catch(() => undefined)
  }

  /**
   * Takes a batch in, in order: runs of updates in one statement each, runs of access changes and
   * deletions in one transaction each (an edit made after a deletion stays after it).
   */
  async deliver(origin: string, entries: OutboxEntry[]): Promise<Delivered> {
    const valid = entries.filter(e => (e.kind === 'update' && e.doc !== null && e.data !== null) || (e.kind === 'access' && e.body !== null) || (e.kind === 'delete' && e.doc !== null))
    let fresh = 0
    for (let i = 0; i < valid.length;) {
      const updates = valid[i]!.kind === 'update'
      let j = i
      while (j < valid.length && (valid[j]!.kind === 'update') === updates) j++
      const run = valid.slice(i, j)
      fresh += updates ? await this.#deliverUpdates(origin, run) : await this.#deliverControl(origin, run)
      i = j
    }
    return {
      fresh,
      updates: valid.filter(e => e.kind === 'update').map(e => ({ doc: e.doc!, data: e.data!, userId: e.userId, trace: e.trace })),
      changes: valid.filter(e => e.kind === 'access').map(e => e.body!.change),
      deleted: valid.filter(e => e.kind === 'delete').map(e => e.doc!),
    }
  }

  /** One statement, one round trip (concord_region_deliver). */
  async #deliverUpdates(origin: string, updates: OutboxEntry[]): Promise<number> {
    // the first writer of a Yjs client id owns it in the peer region too
    const authors = new Map<string, { doc: string; client: number; userId: string }>()
    for (const e of updates) {
      if (e.userId === null) continue
      let clients: Map<number, number>
      try {
        clients = Y.parseUpdateMeta(e.data!).to
      } catch {
        continue
      }
      for (const c of clients.keys()) {
        const key = `${e.doc}\u0001${c}`
        if (!authors.has(key)) authors.set(key, { doc: e.doc!, client: c, userId: e.userId })
      }
    }
    const list = [...authors.values()]
    const r = await this.#pool.query<{ fresh: number | null }>(
      'SELECT concord_region_deliver($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) AS fresh',
      [origin, updates.map(e => e.id), updates.map(e => e.doc), updates.map(e => buffer(e.data!)), updates.map(e => e.userId), updates.map(e => e.at),
        list.map(a => a.doc), list.map(a => a.client), list.map(a => a.userId), Date.now(), INBOX_KEEP_MS])
    return r.rows[0]?.fresh ?? 0
  }

  /**
   * Access changes and deletions are rare. An access change is applied to the peer's own state
   * (read, change, write); a deletion removes the document's log, snapshot, versions and authors.
   * Two round trips across the link, each a few statements sent as one (literals escaped by pg).
   */
  async #deliverControl(origin: string, entries: OutboxEntry[]): Promise<number> {
    const client = await this.#pool.connect()
    client.on('error', () => undefined)
    let broken = false
    try {
      const ids = entries.map(e => String(Math.trunc(e.id)))
      const now = String(Date.now())
      const results = await client.query(`BEGIN;
        INSERT INTO concord_region_inbox (origin, id, at) SELECT ${client.escapeLiteral(origin)}, unnest(ARRAY[${ids.join(',')}]::bigint[]), ${now} ON CONFLICT DO NOTHING RETURNING id;
        INSERT INTO concord_access (id, state) VALUES (1, '{"revokedUsers":[],"revokedTokens":[],"roles":[]}') ON CONFLICT (id) DO NOTHING;
        SELECT state FROM concord_access WHERE id = 1 FOR UPDATE;`) as unknown as pg.QueryResult[]
      const fresh = new Set(results[1]!.rows.map((r: { id: string }) => Number(r.id)))
      const state = results[3]!.rows[0]!.state as AccessState
      const statements: string[] = []
      let accessChanged = false
      for (const e of entries) {
        if (!fresh.has(e.id)) continue
        if (e.kind === 'access') {
          applyAccessOp(state, e.body!.op)
          accessChanged = true
        } else {
          const doc = client.escapeLiteral(e.doc!)
          for (const table of ['concord_updates', 'concord_snapshots', 'concord_versions', 'concord_version_snapshots', 'concord_authors']) statements.push(`DELETE FROM ${table} WHERE doc = ${doc};`)
        }
      }
      if (accessChanged) statements.push(`UPDATE concord_access SET state = ${client.escapeLiteral(JSON.stringify(state))} WHERE id = 1;`)
      statements.push('COMMIT;')
      await client.query(statements.join('\n'))
      return fresh.size
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined)
      broken = true
      throw err
    } finally {
      client.release(broken)
    }
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => undefined)
  }
}

function buffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength)
}
