/** A TCP proxy adding latency, which can be partitioned and healed (link-proxy.mjs). */
export class LinkProxy {
  constructor(options: { targetPort: number; latencyMs: number })
  port: number
  readonly partitioned: boolean
  listen(): Promise<number>
  partition(): void
  heal(): void
  close(): Promise<void>
}
