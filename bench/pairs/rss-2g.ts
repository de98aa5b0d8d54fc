/** rss-2g: one `backupkit backup` of a 2 GiB SQLite database, for its peak RSS and scratch alone. */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { type Bench, log } from '../bench.js';
import { buildSqlite } from '../data.js';
import { type Row, formatBytes } from '../report.js';
import { runPair, sideOf } from '../rounds.js';
import { BIG_DUMP_BYTES, checks, row } from '../targets.js';
import { backupContender, keeper } from './backupkit.js';

export async function pairRss2g(bench: Bench): Promise<Row[]> {
  const dir = bench.fresh('big-sqlite');
  log(`rss-2g: building a SQLite database of ${formatBytes(bench.sizes.bigSqliteBytes)}`);
  const big = buildSqlite(path.join(dir, 'big.sqlite'), bench.sizes.bigSqliteBytes, log);
  bench.bigSqlite = big;
  const config = bench.writeConfig('big', { big: { driver: 'sqlite', path: big.file } });
  const b = backupContender(bench, 'backupkit backup (sqlite)', config, 'big', keeper(bench, null));
  const samples = await runPair(bench, 'rss-2g', [b], { rounds: 1, cold: true, warmup: false });
  const sb = sideOf(b, samples.get(b)!);
  rmSync(dir, { recursive: true, force: true });
  bench.data.push(['rss-2g database', `SQLite ${formatBytes(big.bytes)} (archive ${formatBytes(sb.outputBytes ?? 0)})`]);
  const bigEnough = big.bytes >= BIG_DUMP_BYTES;
  return [
    row('rss-2g', null, sb, `RSS ≤ 150 MB, scratch 0, for a dump of ${formatBytes(big.bytes)}${bigEnough ? '' : ' (quick: < 2 GB)'}`, () => [checks.rss(sb), checks.scratch(sb)]),
  ];
}
