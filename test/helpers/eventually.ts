/**
 * Waiting for a condition that something else (a log record, a pump report, a peer's close, a
 * metric) will make true, when there is no event to await. The deadline is generous on purpose:
 * on a loaded 2-core machine things arrive late, not wrong, and a deadline that is too short turns
 * a slow machine into a failing test. A condition that never holds fails by name instead of
 * hanging the suite.
 */
export async function eventually(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
