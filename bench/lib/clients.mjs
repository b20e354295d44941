// One entry point for the benchmark's clients: the same scenario code drives
// a server over whichever protocol it speaks.
//
//   protocol       client                       servers
//   'y-websocket'  YClient                      Concord, the y-websocket reference server
//   'hocuspocus'   YClient, hocuspocus framing  Hocuspocus (bench/servers/hocuspocus.mjs)
//   'native'       NativeClient                 Concord (subprotocol 'concord')
//
// Every client takes ws://host:port/<room> (the room, percent-decoded, is the
// document name) and has the interface of YClient: connect({timeoutMs}),
// sendUpdate(update), sendAwareness(state, clock), bufferedAmount,
// drain(maxBytes), close(); fields doc, synced, lastRecv, applyMs, stats,
// closedByServer, lastSeq; options doc, applyRemote, sendLocalUpdates,
// onRemoteUpdate(update, subType), onAwareness(update), onAck(ranges).
// See yclient.mjs and native-client.mjs for the wire formats.
import { YClient, now, connectAll } from './yclient.mjs'
import { NativeClient } from './native-client.mjs'

export { YClient, NativeClient, now, connectAll }

/** Every protocol createClient() accepts. */
export const PROTOCOLS = ['y-websocket', 'hocuspocus', 'native']

/**
 * @param {string} url ws://127.0.0.1:PORT/room
 * @param {object} [opts] the client's options (see YClient and NativeClient)
 * @param {'y-websocket'|'hocuspocus'|'native'} [opts.protocol='y-websocket']
 * @returns {YClient|NativeClient}
 */
export function createClient (url, opts = {}) {
  const protocol = opts.protocol ?? 'y-websocket'
  switch (protocol) {
    case 'y-websocket':
    case 'hocuspocus':
      return new YClient(url, { ...opts, protocol })
    case 'native':
      return new NativeClient(url, opts)
    default:
      throw new Error(`unknown protocol ${JSON.stringify(protocol)} (expected one of ${PROTOCOLS.join(', ')})`)
  }
}
