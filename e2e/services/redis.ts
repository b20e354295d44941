// A real Redis (Debian's redis-server on a free port, without persistence; installed by
// npm test's setup when missing): bench/lib/services.mjs, shared with the cross-node benchmark.
// A real Redis Cluster of such servers (three masters by default, with replicas on demand, to
// kill one and see its replica take over): bench/lib/redis-cluster.mjs, shared with its benchmark.
export { startRedis, type RedisServer } from '../../bench/lib/services.mjs'
export { startRedisCluster, type RedisClusterNode, type RedisClusterServer } from '../../bench/lib/redis-cluster.mjs'
