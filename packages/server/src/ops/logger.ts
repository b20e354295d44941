import { pino, type Logger, type LevelWithSilent } from 'pino'

/** JSON logs on stdout. Tokens and document content are never passed to the logger. */
export function createLogger(level: LevelWithSilent = 'info'): Logger {
  return pino({
    level,
    base: { service: 'concord' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['token', '*.token', 'req.headers.authorization'], remove: true },
  })
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
