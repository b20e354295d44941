import { describe, expect, it } from 'vitest'
import { resolve } from 'node:path'
import { parseExportConfig, parseImportConfig } from './archive-config.js'

describe('concord export / import arguments', () => {
  it('take the store as serve does (flags, then CONCORD_STORE / CONCORD_DATA), and gzip an .gz archive', () => {
    expect(parseExportConfig(['--data', 'd', '--out', 'backup.ndjson.gz'], {})).toEqual({
      target: { store: 'sqlite', data: resolve('d') }, out: resolve('backup.ndjson.gz'), gzip: true,
    })
    expect(parseExportConfig(['--out', '-'], { CONCORD_STORE: 'postgres://u:p@h/db' })).toEqual({
      target: { store: 'postgres', storeUrl: 'postgres://u:p@h/db', data: resolve('./data') }, out: '-', gzip: false,
    })
    expect(parseExportConfig(['--out', '-', '--gzip'], { CONCORD_DATA: '/srv/concord' }).target.data).toBe('/srv/concord')
    expect(parseImportConfig(['--store', 'postgresql://h/db', '--in', 'a.ndjson'], {})).toMatchObject({ in: resolve('a.ndjson'), onExisting: 'refuse' })
    expect(parseImportConfig(['--in', '-', '--merge'], {}).onExisting).toBe('merge')
    expect(parseImportConfig(['--in', '-', '--overwrite'], {}).onExisting).toBe('overwrite')
  })

  it('refuse what cannot work', () => {
    expect(() => parseExportConfig([], {})).toThrow(/needs --out/)
    expect(() => parseImportConfig(['--data', 'd'], {})).toThrow(/needs --in/)
    expect(() => parseImportConfig(['--in', 'a', '--merge', '--overwrite'], {})).toThrow(/not both/)
    expect(() => parseExportConfig(['--out', 'a', '--store', 'memory'], {})).toThrow(/memory store/)
    expect(() => parseExportConfig(['--out', 'a', '--store', './data'], {})).toThrow(/invalid store "\.\/data": use sqlite \(with --data <dir>\)/)
    expect(() => parseExportConfig(['--out', 'a', '--port', '1'], {})).toThrow(/port/)
  })
})
