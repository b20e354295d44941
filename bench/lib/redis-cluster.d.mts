import type { Redis } from 'ioredis'

/** One redis-server of a cluster. */
export interface RedisClusterNode {
  readonly port: number
  /** Its pid while it runs, else null. */
  pid(): number | null
  /** Its cluster node id (`CLUSTER MYID`). */
  readonly id: string
}

/** A real Redis Cluster on 127.0.0.1 (startRedisCluster). */
export interface RedisClusterServer {
  /** `redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,…`: every node, as seeds. */
  readonly url: string
  readonly nodes: readonly RedisClusterNode[]
  /** `redis-server --version`, shortened. */
  readonly version: string
  /** The running masters as the cluster sees them now, with the slot ranges each serves. */
  masters(): Promise<{ node: RedisClusterNode; slots: [number, number][] }[]>
  /** The node that serves `slot` now (asked of a running node). */
  masterOf(slot: number): Promise<RedisClusterNode>
  /** SIGKILL one node by its pid; resolves once it exited. */
  kill(node: RedisClusterNode): Promise<void>
  /** Starts a killed node again on its port, with its cluster config and no data. */
  restart(node: RedisClusterNode): Promise<void>
  /**
   * Until every running node says `cluster_state:ok` and every slot is served by a running master
   * (after a master was killed: its replica took over), and with `replicas` every master has a
   * running replica linked to it; fails after `timeoutMs` (default 30 s).
   */
  waitHealthy(options?: { timeoutMs?: number; replicas?: boolean }): Promise<void>
  /** A plain connection to one node (the caller disconnects it). */
  connect(node: RedisClusterNode): Redis
  /** Kills every node (by pid) and deletes the directory. */
  stop(): Promise<void>
}

/**
 * A Redis Cluster of `masters` masters (default 3) and `replicasPerMaster` replicas each (default 0)
 * on free ports of 127.0.0.1, without persistence, `--cluster-node-timeout` `nodeTimeoutMs`
 * (default 2,000); resolves once it is healthy (redis-cluster.mjs).
 */
export function startRedisCluster(options?: { masters?: number; replicasPerMaster?: number; nodeTimeoutMs?: number }): Promise<RedisClusterServer>
