/**
 * verify-pg, verify-sqlite, verify-sqlite0: `sha256sum archive` against `backupkit verify` of the
 * same archive, reusing the backup pairs' archives or making one untimed.
 */
import path from 'node:path';
import { type Bench, log } from '../bench.js';
import { measure } from '../measure.js';
import { type Row, formatBytes } from '../report.js';
import { type Contender, runPair, sideOf } from '../rounds.js';
import { VERIFY_RATIO_MAX, checks, row } from '../targets.js';
import { backupContender, jsonOut, keeper } from './backupkit.js';
import { pgConfig } from './pg.js';
import { sqliteConfig } from './sqlite.js';

export async function pairVerify(bench: Bench, which: 'pg' | 'sqlite' | 'sqlite0'): Promise<Row[]> {
  const id = `verify-${which}`;
  const slot = which === 'pg' ? 'pgStorage' : which === 'sqlite' ? 'sqliteStorage' : 'sqlite0Storage';
  let config: string;
  if (which === 'pg') {
    config = path.join(bench.work, 'pg.config.json');
    if (!bench.pgStorage) {
      const pg = await bench.ensurePg();
      config = await pgConfig(bench, pg);
      log(`${id}: making a backup to verify (untimed)`);
      await backupContender(bench, 'backupkit backup', config, 'pg', keeper(bench, slot)).run();
    }
  } else {
    const sqlite = bench.ensureSqlite();
    config = sqliteConfig(bench, sqlite.file);
    if (!bench[slot]) {
      log(`${id}: making a backup to verify (untimed)`);
      await backupContender(bench, 'backupkit backup', config, which === 'sqlite' ? 'sq' : 'sq0', keeper(bench, slot)).run();
    }
  }
  const storage = bench[slot]!;
  const archive = path.join(storage.dir, `${storage.id}.zip`);
  const a: Contender = {
    label: 'sha256sum',
    command: 'sha256sum <archive>',
    async run() {
      const tmp = bench.fresh('tmp');
      return { m: await measure({ command: 'sha256sum', args: [archive], env: { TMPDIR: tmp }, watch: [tmp] }), outputBytes: null };
    },
  };
  const b: Contender = {
    label: 'backupkit verify',
    command: `backupkit verify <id>`,
    async run() {
      const m = await measure(bench.backupkit(config, storage.dir, ['--json', 'verify', storage.id], { captureStdout: true }));
      const results = jsonOut<{ results: { ok: boolean; error: string | null }[] }>(m).results;
      if (!results[0]?.ok) throw new Error(`verify of ${storage.id} failed: ${results[0]?.error}`);
      return { m, outputBytes: null };
    },
  };
  const samples = await runPair(bench, id, [a, b], { rounds: bench.options.rounds, cold: false });
  const sa = sideOf(a, samples.get(a)!);
  const sb = sideOf(b, samples.get(b)!);
  const mbps = (ms: number) => `${(storage.size / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
  const kind = which === 'pg' ? 'pg_dump custom-format dump, deflated at level 6' : which === 'sqlite' ? 'SQLite file deflated at level 6' : 'SQLite file stored (level 0)';
  bench.notes.push(
    `${id}: archive of ${formatBytes(storage.size)} (${kind}); throughput sha256sum ${mbps(sa.medianMs)}, backupkit verify ${mbps(sb.medianMs)} ` +
      `(${((sa.medianMs / sb.medianMs) * 100).toFixed(0)}% of sha256sum's; target ≥ 80%).`,
  );
  return [row(id, sa, sb, 'throughput ≥ 0.8 × sha256sum (B/A ≤ 1.25)', (r) => [checks.ratio(r, VERIFY_RATIO_MAX, 'B/A ≤ 1.25')])];
}
