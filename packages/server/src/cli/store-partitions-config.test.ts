import { describe, expect, it } from 'vitest'
import { parseServeConfig } from './serve-config.js'
import { parseExportConfig } from './archive-config.js'

const AUTH = ['--auth', 'none']
const A = 'postgres://u:secret@db-a:5432/concord'
const B = 'postgresql://u:secret@db-b/concord?sslmode=require'
const C = 'postgres://db-c/concord'

describe('concord serve: PostgreSQL partitions', () => {
  it('takes them as a list in --store, as repeated --store-partition, or from the environment (flags first)', () => {
    const expected = [{ id: 'p1', url: A }, { id: 'p2', url: B }, { id: 'p3', url: C }]
    expect(parseServeConfig(['--store', `p1=${A},p2=${B},p3=${C}`, ...AUTH], {})).toMatchObject({ store: 'postgres', storePartitions: expected })
    expect(parseServeConfig(['--store-partition', `p1=${A}`, '--store-partition', `p2=${B}`, '--store-partition', `p3=${C}`, ...AUTH], {}).storePartitions).toEqual(expected)
    expect(parseServeConfig(AUTH, { CONCORD_STORE: `p1=${A},p2=${B},p3=${C}` }).storePartitions).toEqual(expected)
    expect(parseServeConfig(AUTH, { CONCORD_STORE_PARTITIONS: `p1=${A}  p2=${B}\np3=${C}` }).storePartitions).toEqual(expected)
    // flags win over the environment
    expect(parseServeConfig(['--store-partition', `x=${A}`, ...AUTH], { CONCORD_STORE: 'sqlite' }).storePartitions).toEqual([{ id: 'x', url: A }])
    expect(parseServeConfig(['--store', 'memory', ...AUTH], { CONCORD_STORE_PARTITIONS: `p1=${A}` })).toMatchObject({ store: 'memory' })
    expect(parseServeConfig(['--store', 'memory', ...AUTH], {}).storePartitions).toBeUndefined()
    // one plain URL is the one-server store, as before
    const single = parseServeConfig(['--store', A, ...AUTH], {})
    expect(single).toMatchObject({ store: 'postgres', storeUrl: A })
    expect(single.storePartitions).toBeUndefined()
    // a URL whose host list has commas stays whole: the list splits only before <id>=postgres
    expect(parseServeConfig(['--store', `a=postgres://h1:5432,h2:5432/db,b=${C}`, ...AUTH], {}).storePartitions).toEqual([{ id: 'a', url: 'postgres://h1:5432,h2:5432/db' }, { id: 'b', url: C }])
    // a cluster on partitions
    expect(parseServeConfig(['--store', `p1=${A},p2=${B}`, '--redis', 'redis://r:6379', ...AUTH], {}).redis).toBe('redis://r:6379')
  })

  it('refuses what cannot work, without echoing passwords', () => {
    const refuse = (argv: string[], env: NodeJS.ProcessEnv = {}): string => {
      try {
        parseServeConfig([...argv, ...AUTH], env)
      } catch (err) {
        return (err as Error).message
      }
      throw new Error('accepted')
    }
    expect(refuse(['--store', `${A},${C}`])).toMatch(/each PostgreSQL partition needs an id: --store p1=postgres/)
    expect(refuse(['--store', `p1=${A},p1=${C}`])).toMatch(/partition id "p1" is given twice/)
    expect(refuse(['--store', `p1=${A},p2=${A}`])).toMatch(/same database URL/)
    expect(refuse(['--store', `p 1=${A},p2=${C}`])).toMatch(/invalid partition "p 1=postgres:\/\/u:\*\*\*@db-a/)
    expect(refuse(['--store-partition', 'p1=mysql://u:secret@h/db'])).toMatch(/invalid partition "p1=mysql:\/\/u:\*\*\*@h\/db"/)
    expect(refuse(['--store', A, '--store-partition', `p1=${C}`])).toMatch(/--store or --store-partition, not both/)
    expect(refuse([], { CONCORD_STORE: A, CONCORD_STORE_PARTITIONS: `p1=${C}` })).toMatch(/CONCORD_STORE or CONCORD_STORE_PARTITIONS, not both/)
    expect(refuse(['--store', `p1=${A},p2=${B}`, '--redis', 'redis://r', '--region', 'eu'])).toMatch(/--region does not work with a partitioned store/)
    for (const message of [refuse(['--store', `p1=${A},p1=${C}`]), refuse(['--store-partition', 'p1=mysql://u:secret@h/db'])]) expect(message).not.toContain('secret')
  })

  it('export and import take the partitions the same way', () => {
    expect(parseExportConfig(['--out', '-', '--store', `p1=${A},p2=${C}`], {}).target.storePartitions).toEqual([{ id: 'p1', url: A }, { id: 'p2', url: C }])
    expect(parseExportConfig(['--out', '-', '--store-partition', `p1=${A}`, '--store-partition', `p2=${C}`], {}).target).toMatchObject({ store: 'postgres', storePartitions: [{ id: 'p1' }, { id: 'p2' }] })
  })
})
