// `concord repartition --store <id>=postgres://…,…`: add partitions to a partitioned PostgreSQL store,
// offline, moving only the documents whose partition changes (storage/repartition.ts).
import { parseArgs } from 'node:util'
import { parseStore, UsageError, type StorePartitionConfig } from './serve-config.js'

export function parseRepartitionConfig(argv: string[], env: NodeJS.ProcessEnv): { partitions: StorePartitionConfig[]; quiet: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: { store: { type: 'string' }, 'store-partition': { type: 'string', multiple: true }, quiet: { type: 'boolean', short: 'q' } },
    strict: true, allowPositionals: false,
  })
  const parsed = parseStore(values.store, undefined, env, values['store-partition'])
  if (parsed.storePartitions === undefined) throw new UsageError('concord repartition takes the new partitions: --store <id>=postgres://…,<id>=postgres://… (every current one and the new ones)')
  return { partitions: parsed.storePartitions, quiet: values.quiet === true }
}

export async function runRepartition(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream): Promise<void> {
  const config = parseRepartitionConfig(argv, env)
  const { repartition } = await import('../storage/repartition.js')
  const summary = await repartition({
    partitions: config.partitions.map(p => ({ id: p.id, connectionString: p.url })),
    ...(config.quiet ? {} : { onMoved: (document: string, from: string, to: string) => { out.write(`moved ${JSON.stringify(document)} from ${from} to ${to}\n`) } }),
  })
  out.write(`concord repartition: {${summary.from.join(', ')}} -> {${summary.to.join(', ')}} (primary ${summary.primary}): ${summary.moved} of ${summary.documents} documents moved\n`)
}
