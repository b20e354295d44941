// A real Redis (Debian's redis-server on a free port, without persistence; installed by
// npm test's setup when missing): bench/lib/services.mjs, shared with the cross-node benchmark.
export { startRedis, type RedisServer } from '../../bench/lib/services.mjs'
