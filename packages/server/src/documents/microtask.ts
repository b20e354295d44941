const resolved = Promise.resolve()

/**
 * Runs `fn` as a microtask, like `queueMicrotask` without the async-hooks resource Node creates
 * for each call of it (two per update on the hot path). `fn` must not throw: the callers pass
 * functions that contain their own errors.
 */
export function microtask(fn: () => void): void {
  void resolved.then(fn)
}
