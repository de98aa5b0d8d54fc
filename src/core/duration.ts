/** Durations as the contract writes them: `90s`, `5m`, `12h`, `30d`, `8w`, `1y`, or a number of seconds. */

const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
};

export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)([smhdwy]?)$/;

/** Milliseconds, or undefined when the text is not a duration (or one too long to count: not finite). */
export function parseDuration(text: string | number): number | undefined {
  if (typeof text === 'number') return finite(Number.isFinite(text) && text >= 0 ? text * 1000 : undefined);
  const match = DURATION_PATTERN.exec(text.trim());
  if (!match) return undefined;
  const value = Number(match[1]);
  const unit = match[2] || 's';
  return finite(value * (UNIT_MS[unit] ?? 1000));
}

function finite(ms: number | undefined): number | undefined {
  return ms !== undefined && Number.isFinite(ms) ? ms : undefined;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d`;
}
