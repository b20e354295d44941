// Small numeric helpers for reports.

/** Nearest-rank percentile (p in 0..100) of an ascending-sorted array. */
export function percentile (sorted, p) {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

/** Formats a number with `digits` decimals and thousands separators; '–' for NaN. */
export function fmt (x, digits = 0) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–'
  return Number(x).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** Integer count with separators. */
export const int = (x) => fmt(x, 0)
