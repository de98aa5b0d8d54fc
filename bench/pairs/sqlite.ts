/**
 * sqlite-backup: `sqlite3 .backup` against `backupkit backup` at deflate level 6 (the default) and
 * 0; and, for the compressed archive, the shell line that also compresses (`.backup` then
 * `gzip -6`), so level 6 has a like-for-like comparison beside the required one.
 */
import { rmSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Bench } from '../bench.js';
import { measure } from '../measure.js';
import { type Row, formatBytes } from '../report.js';
import { type Contender, runPair, sideOf } from '../rounds.js';
import { backupRow } from '../targets.js';
import { backupContender, keeper } from './backupkit.js';

export function sqliteConfig(bench: Bench, file: string): string {
  return bench.writeConfig('sqlite', {
    sq: { driver: 'sqlite', path: file },
    sq0: { driver: 'sqlite', path: file, compression: { level: 0 } },
  });
}

export async function pairSqliteBackup(bench: Bench): Promise<Row[]> {
  const sqlite = bench.ensureSqlite();
  const config = sqliteConfig(bench, sqlite.file);
  let aDir: string | undefined;
  const a: Contender = {
    label: 'sqlite3 .backup',
    command: `sqlite3 bench.sqlite ".backup '<dir>/copy.sqlite'"`,
    async run() {
      const dir = bench.fresh('sqlite-a');
      const tmp = bench.fresh('tmp');
      const copy = path.join(dir, 'copy.sqlite');
      const m = await measure({ command: 'sqlite3', args: [sqlite.file, `.backup '${copy}'`], env: { TMPDIR: tmp }, watch: [dir, tmp] });
      const outputBytes = statSync(copy).size;
      if (aDir) rmSync(aDir, { recursive: true, force: true });
      aDir = dir;
      return { m, outputBytes };
    },
  };
  let gzDir: string | undefined;
  const gz: Contender = {
    label: 'sqlite3 .backup + gzip -6',
    command: `sh -c "sqlite3 bench.sqlite '.backup <dir>/copy.sqlite' && gzip -6 <dir>/copy.sqlite"`,
    async run() {
      const dir = bench.fresh('sqlite-gz');
      const tmp = bench.fresh('tmp');
      const copy = path.join(dir, 'copy.sqlite');
      const script = 'sqlite3 "$1" ".backup \'$2\'" && gzip -6 "$2"';
      const m = await measure({ command: 'sh', args: ['-c', script, 'sh', sqlite.file, copy], env: { TMPDIR: tmp }, watch: [dir, tmp] });
      const outputBytes = statSync(`${copy}.gz`).size;
      if (gzDir) rmSync(gzDir, { recursive: true, force: true });
      gzDir = dir;
      return { m, outputBytes };
    },
  };
  const b = backupContender(bench, 'backupkit backup', config, 'sq', keeper(bench, 'sqliteStorage'));
  const b0 = backupContender(bench, 'backupkit backup (level 0)', config, 'sq0', keeper(bench, 'sqlite0Storage'));
  const samples = await runPair(bench, 'sqlite-backup', [a, b, b0, gz], { rounds: bench.options.rounds, cold: true });
  const sa = sideOf(a, samples.get(a)!);
  const sb = sideOf(b, samples.get(b)!);
  const sb0 = sideOf(b0, samples.get(b0)!);
  const sgz = sideOf(gz, samples.get(gz)!);
  bench.data.push(['SQLite archive', `${formatBytes(sb.outputBytes ?? 0)} at level 6 (default), ${formatBytes(sb0.outputBytes ?? 0)} at level 0`]);
  return [
    backupRow('sqlite-backup', sa, sb),
    backupRow('sqlite-backup', sa, sb0),
    backupRow('sqlite-backup', sgz, sb),
  ];
}
