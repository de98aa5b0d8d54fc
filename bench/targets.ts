/** The targets of issue 6, and the checks that hold a pair's sides against them. */
import { type Check, type Row, type Side, formatBytes, formatMs } from './report.js';

export const RATIO_MAX = 1.05;
const RSS_MAX_BYTES = 150e6;
/** An S3 storage adds the upload's parts in flight: partSize x (queueSize + 1) (docs/storages.md). */
export const S3_RATIO_MAX = 1.1;
export const S3_RSS_MAX_BYTES = 200e6;
const SCRATCH_ZERO_BYTES = 64 * 1024; // below the sampler's resolution: a sidecar or a tool's config file
export const VERIFY_RATIO_MAX = 1 / 0.8;
export const LIST_MAX_MS = 1000;
export const HELP_MAX_MS = 300;
export const BIG_DUMP_BYTES = 2e9;

export const checks = {
  ratio: (ratio: number | null, max: number, label = `B/A ≤ ${max.toFixed(2)}`): Check => ({ label, ok: ratio !== null && ratio <= max, actual: ratio === null ? '—' : ratioText(ratio, max) }),
  rss: (side: Side, max = RSS_MAX_BYTES): Check => ({ label: `RSS ≤ ${(max / 1e6).toFixed(0)} MB`, ok: side.peakRssKb * 1024 <= max, actual: `${((side.peakRssKb * 1024) / 1e6).toFixed(0)} MB` }),
  scratch: (side: Side): Check => ({ label: 'scratch 0', ok: side.scratchBytes <= SCRATCH_ZERO_BYTES, actual: formatBytes(side.scratchBytes) }),
  under: (side: Side, maxMs: number): Check => ({ label: `< ${formatMs(maxMs)}`, ok: side.medianMs < maxMs, actual: formatMs(side.medianMs) }),
};

/** A ratio to two decimals, or three where two would print a miss as the limit itself (1.051 for 1.05). */
function ratioText(ratio: number, max: number): string {
  return ratio > max && ratio.toFixed(2) === max.toFixed(2) ? ratio.toFixed(3) : ratio.toFixed(2);
}

export function row(pair: string, a: Side | null, b: Side, target: string, make: (ratio: number | null) => Check[]): Row {
  const ratio = a ? b.medianMs / a.medianMs : null;
  return { pair, a, b, ratio, target, checks: make(ratio) };
}

export const BACKUP_TARGET = 'B/A ≤ 1.05, RSS ≤ 150 MB, scratch 0';

/** A backup or restore row: B within 1.05× of A, under the memory ceiling, with no scratch disk. */
export function backupRow(pair: string, a: Side, b: Side, target = BACKUP_TARGET): Row {
  return row(pair, a, b, target, (r) => [checks.ratio(r, RATIO_MAX), checks.rss(b), checks.scratch(b)]);
}
