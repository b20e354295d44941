import type { IncomingMessage } from 'node:http'

/**
 * The client's address: the socket's peer, or behind `trustedHops` proxies that each append
 * the address they saw to X-Forwarded-For, the `trustedHops`-th entry from the right (entries
 * further left were written by the client or proxies not trusted, and are ignored).
 */
export function clientAddress(req: IncomingMessage, trustedHops: number): string {
  const peer = req.socket.remoteAddress ?? ''
  if (trustedHops <= 0) return peer
  const header = req.headers['x-forwarded-for']
  const hops = (Array.isArray(header) ? header.join(',') : header ?? '').split(',').map(h => h.trim()).filter(h => h !== '')
  if (hops.length === 0) return peer
  return hops[Math.max(0, hops.length - trustedHops)]!
}
