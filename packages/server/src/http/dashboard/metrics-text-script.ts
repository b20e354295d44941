/**
 * Browser code (a script string, inlined into the page) that reads the Prometheus
 * text exposition of /metrics, so the dashboard's tiles show exactly what /metrics says.
 *
 * Defines:
 * - `parseMetricsText(text)` → `{ samples: [{ name, labels, value }], types: { [family]: type } }`
 * - `metricSum(parsed, name, labels?)` → the sum of the series of `name` whose labels include
 *   `labels`; 0 when the family is declared (`# TYPE`) but has no series yet (a counter
 *   nothing has counted); null when /metrics does not have it at all.
 *
 * Plain ES2020 without template literals (it lives in one).
 */
export const metricsTextScript = String.raw`
function parseMetricsText(text) {
  var samples = []
  var types = {}
  var lines = String(text).split('\n')
  for (var i = 0; i < lines.length; i++) {
    var line = lines[i].trim()
    if (line === '') continue
    if (line.charAt(0) === '#') {
      var declared = /^#\s*TYPE\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s+(\S+)/.exec(line)
      if (declared) types[declared[1]] = declared[2]
      continue
    }
    var sample = parseSampleLine(line)
    if (sample !== null) samples.push(sample)
  }
  return { samples: samples, types: types }
}

/** One line "name{label="value",...} value [timestamp]", or null when it is not one. */
function parseSampleLine(line) {
  var nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)
  if (nameMatch === null) return null
  var name = nameMatch[0]
  var pos = name.length
  var labels = {}
  if (line.charAt(pos) === '{') {
    pos++
    for (;;) {
      while (line.charAt(pos) === ' ' || line.charAt(pos) === ',') pos++
      if (line.charAt(pos) === '}') { pos++; break }
      var labelMatch = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(line.slice(pos))
      if (labelMatch === null) return null
      pos += labelMatch[0].length
      var value = ''
      for (;;) {
        if (pos >= line.length) return null
        var c = line.charAt(pos++)
        if (c === '"') break
        if (c === '\\') {
          var e = line.charAt(pos++)
          value += e === 'n' ? '\n' : e
        } else {
          value += c
        }
      }
      labels[labelMatch[1]] = value
    }
  }
  var rest = line.slice(pos).trim().split(/\s+/)
  if (rest.length < 1 || rest[0] === '') return null
  return { name: name, labels: labels, value: parseSampleValue(rest[0]) }
}

function parseSampleValue(text) {
  if (text === '+Inf' || text === 'Inf') return Infinity
  if (text === '-Inf') return -Infinity
  if (text === 'NaN') return NaN
  var n = Number(text)
  return n
}

function metricSum(parsed, name, labels) {
  var found = false
  var sum = 0
  for (var i = 0; i < parsed.samples.length; i++) {
    var s = parsed.samples[i]
    if (s.name !== name) continue
    var matches = true
    if (labels) {
      for (var key in labels) {
        if (Object.prototype.hasOwnProperty.call(labels, key) && s.labels[key] !== labels[key]) matches = false
      }
    }
    if (!matches) continue
    found = true
    sum += s.value
  }
  if (found) return sum
  var family = name.replace(/_total$/, '')
  return Object.prototype.hasOwnProperty.call(parsed.types, name) || Object.prototype.hasOwnProperty.call(parsed.types, family) ? 0 : null
}
`
