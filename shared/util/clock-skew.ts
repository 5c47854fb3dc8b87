/**
 * A certificate or attestation check that fails on time says whether the clock may be the cause.
 * Enclaves drift, and a clock minutes off makes a valid certificate look expired or not yet
 * valid; the operator then needs the local time and the last measured offset from the parent
 * (recorded by the inner's clock sync), not only "certificate has expired".
 */
let lastOffsetMs: number | undefined;

/** Called by the clock sync with parent-minus-local at each sample. */
export function recordClockOffset(ms: number): void {
  lastOffsetMs = ms;
}

/** Node's TLS codes and the attestation verifier's codes for a validity window missed. */
const TIME_CODES = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CRL_HAS_EXPIRED', 'CRL_NOT_YET_VALID', 'expired', 'not_yet_valid']);

function codesOf(err: unknown): string[] {
  const out: string[] = [];
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') out.push(code);
  }
  return out;
}

/** A sentence to append when `err` (or its causes) is a validity-window failure; '' otherwise. */
export function clockSkewHint(err: unknown, now: Date = new Date()): string {
  if (!codesOf(err).some((c) => TIME_CODES.has(c))) return '';
  const offset =
    lastOffsetMs === undefined
      ? 'no clock sync with the parent yet'
      : `the parent's clock was ${lastOffsetMs >= 0 ? '+' : ''}${lastOffsetMs} ms from this one at the last sync`;
  return (
    ` (this failed on time: this clock reads ${now.toISOString()}, ${offset}; a skewed clock makes valid certificates look ` +
    'expired or not yet valid: see bootstrap.clock_sync_interval)'
  );
}
