// Progress reporting for long benchmark phases, to stderr.
//
// On a terminal: one line redrawn in place (at most 10 times a second),
//   trace replay [#########...........] 45% 4,500/10,000 12.3 s
// finished with a newline by done(). Elsewhere (CI, log files): plain lines
// only, never carriage returns: one at the start, then at most one per 10 %
// step and per 5 s (both must have passed since the last line), and one at
// the end with the elapsed time. Without a known total only the count and the
// elapsed time are shown (then a line at most every 5 s).
//
// Reporting never throws: writes to a destroyed or ended stream are skipped,
// and write errors (EPIPE on a closed pipe, …) are swallowed; to that end an
// 'error' listener is attached to a stream that has none.

const TTY_REDRAW_MS = 100
const LOG_EVERY_MS = 5000
const BAR_WIDTH = 20

const guarded = new WeakSet()

const int = (x) => Math.round(x).toLocaleString('en-US')

/** "12.3 s" below 100 s, "4m05s" above. */
function elapsed (ms) {
  const s = ms / 1000
  if (s < 100) return `${s.toFixed(1)} s`
  const whole = Math.round(s)
  return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`
}

/** Writes without ever throwing; false when the stream cannot take output. */
function safeWrite (stream, chunk) {
  if (!stream || typeof stream.write !== 'function') return false
  if (stream.destroyed || stream.writableEnded || stream.closed) return false
  try {
    if (typeof stream.on === 'function' && !guarded.has(stream)) {
      guarded.add(stream)
      if (typeof stream.listenerCount !== 'function' || stream.listenerCount('error') === 0) stream.on('error', () => {})
    }
    stream.write(chunk)
    return true
  } catch {
    return false
  }
}

/**
 * Starts reporting progress of one phase.
 *
 * @param {string} label what is being done, e.g. 'trace replay'
 * @param {number} [total] expected final count; 0/undefined when unknown
 * @param {{ stream?: NodeJS.WritableStream & { isTTY?: boolean, columns?: number } }} [options]
 *   stream: where to write (default process.stderr); redrawn in place only if stream.isTTY
 * @returns {{
 *   tick: (n?: number) => void,
 *   set: (value: number) => void,
 *   note: (text: string) => void,
 *   done: (text?: string) => void
 * }}
 *   tick(n = 1) adds n to the count; set(value) sets it; note(text) prints a
 *   line of text without disturbing the progress line; done(text?) prints the
 *   final line (with the optional text appended). Calls after done() are ignored.
 */
export function progress (label, total, { stream = process.stderr } = {}) {
  label = String(label ?? '')
  const known = Number.isFinite(total) && total > 0
  const tty = Boolean(stream?.isTTY)
  const t0 = performance.now()
  let count = 0
  let finished = false
  let lastDraw = -Infinity // tty: time of the last redraw
  let lastLine = t0 // log mode: time of the last printed line
  let lastStep = 0 // log mode: 10 % step of the last printed line

  const percent = () => Math.min(100, Math.floor((count / total) * 100))
  const counts = () => (known ? `${percent()}% ${int(count)}/${int(total)}` : int(count))

  function ttyLine (suffix = '') {
    let line = label + ' '
    if (known) {
      const filled = Math.min(BAR_WIDTH, Math.floor((count / total) * BAR_WIDTH))
      line += `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] `
    }
    line += `${counts()} ${elapsed(performance.now() - t0)}${suffix}`
    const cols = stream.columns > 10 ? stream.columns - 1 : Infinity
    return line.length > cols ? line.slice(0, cols - 1) + '…' : line
  }

  function redraw (now = performance.now()) {
    lastDraw = now
    safeWrite(stream, '\r' + ttyLine() + '\x1b[K')
  }

  function logLine (now) {
    lastLine = now
    if (known) lastStep = Math.floor(percent() / 10)
    safeWrite(stream, `${label} ${counts()} ${elapsed(now - t0)}\n`)
  }

  /** Called after every change of count; cheap when nothing is due. */
  function update () {
    if (finished) return
    if (tty) {
      const now = performance.now()
      if (now - lastDraw >= TTY_REDRAW_MS) redraw(now)
      return
    }
    if (known && Math.floor(percent() / 10) <= lastStep) return
    const now = performance.now()
    if (now - lastLine >= LOG_EVERY_MS) logLine(now)
  }

  if (tty) redraw()
  else safeWrite(stream, `${label}: started${known ? ` (${int(total)} in total)` : ''}\n`)

  return {
    tick (n = 1) {
      if (finished || !Number.isFinite(n)) return
      count += n
      update()
    },
    set (value) {
      if (finished || !Number.isFinite(value)) return
      count = value
      update()
    },
    note (text) {
      if (finished) return
      if (tty) {
        safeWrite(stream, `\r\x1b[K${text}\n`)
        redraw()
      } else {
        safeWrite(stream, `${label}: ${text}\n`)
      }
    },
    done (text) {
      if (finished) return
      finished = true
      const suffix = text ? ` — ${text}` : ''
      if (tty) {
        safeWrite(stream, '\r' + ttyLine(suffix) + '\x1b[K\n')
      } else {
        const what = known ? `${int(count)}/${int(total)}` : int(count)
        safeWrite(stream, `${label}: done ${what} in ${elapsed(performance.now() - t0)}${suffix}\n`)
      }
    }
  }
}
