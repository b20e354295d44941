// Timestamped entries that benchmark clients insert into a Y.Text, read back out of update bytes.

/**
 * Calls visit(sender, seq, sentAt) for each entry "<sender>.<seq>@<ms>.<frac>;" in the bytes of an
 * update (Yjs keeps inserted text verbatim), scanning bytes rather than decoding a string.
 */
export function eachEntry (u, visit) {
  for (let at = u.indexOf(0x40); at !== -1; at = u.indexOf(0x40, at + 1)) {
    // backwards: <sender>.<seq> before the '@'
    let k = at - 1
    let seq = 0
    let mult = 1
    while (k >= 0 && u[k] >= 0x30 && u[k] <= 0x39) { seq += (u[k] - 0x30) * mult; mult *= 10; k-- }
    if (mult === 1 || k < 1 || u[k] !== 0x2e) continue
    k--
    let sender = 0
    mult = 1
    while (k >= 0 && u[k] >= 0x30 && u[k] <= 0x39) { sender += (u[k] - 0x30) * mult; mult *= 10; k-- }
    if (mult === 1) continue
    // forwards: <ms>.<frac>; after it
    let j = at + 1
    let t = 0
    while (j < u.length && u[j] >= 0x30 && u[j] <= 0x39) { t = t * 10 + (u[j] - 0x30); j++ }
    if (u[j] === 0x2e) {
      j++
      let scale = 0.1
      while (j < u.length && u[j] >= 0x30 && u[j] <= 0x39) { t += (u[j] - 0x30) * scale; scale /= 10; j++ }
    }
    if (u[j] !== 0x3b) continue
    visit(sender, seq, t)
  }
}
