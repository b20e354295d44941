/** What connection code needs from a logger (a `SocketConnection` is one: it logs with its own bindings). */
export interface Log {
  trace(obj: object, msg: string): void
  debug(obj: object, msg: string): void
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}
