/** Durations in config: `250ms`, `5s`, `2m`, `1h`, or a bare number of milliseconds. */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$';

export function parseDuration(value: string | number): number {
  if (typeof value === 'number') return value;
  const unit = new RegExp(DURATION_PATTERN).exec(value)?.[2];
  const scale = unit === undefined ? undefined : UNITS[unit];
  if (unit === undefined || scale === undefined) throw new Error(`"${value}" is not a duration (use e.g. 250ms, 5s, 2m, 1h)`);
  return Math.round(Number(value.slice(0, value.length - unit.length)) * scale);
}
