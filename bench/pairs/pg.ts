/**
 * pg-backup (`pg_dump -Fc -f file` against `backupkit backup`) and pg-restore (`pg_restore` of that
 * file against `backupkit restore`), on the throwaway PostgreSQL cluster; pg-restore-mid, the
 * restore of a database about a third that size, where restore's fixed cost weighs more, against
 * `pg_restore --single-transaction` (as backupkit runs it) and against plain `pg_restore`.
 */
import { rmSync, statSync } from 'node:fs';
import path from 'node:path';
import type { PgServer } from '../../test/support/postgres.js';
import { type Bench, type StoredBackup, log } from '../bench.js';
import { PG_DATABASE, PG_MID_DATABASE, pgEnv, pgTool, psql } from '../data.js';
import { measure } from '../measure.js';
import { type Row, formatBytes } from '../report.js';
import { type Contender, runPair, sideOf } from '../rounds.js';
import { backupRow, checks, row } from '../targets.js';
import { backupContender, keeper } from './backupkit.js';

function pgDumpContender(bench: Bench, pg: PgServer, database = PG_DATABASE): Contender {
  const slot = database === PG_DATABASE ? 'pgDumpDir' : 'pgMidDumpDir';
  return {
    label: 'pg_dump -Fc -f file',
    command: `pg_dump --format=custom --file=<dir>/dump.pgc --no-password --dbname=${database}`,
    async run() {
      const dir = bench.fresh('pgdump-a');
      const tmp = bench.fresh('tmp');
      const m = await measure({
        command: pgTool(pg, 'pg_dump'),
        args: ['--format=custom', `--file=${path.join(dir, 'dump.pgc')}`, '--no-password', `--dbname=${database}`],
        env: { ...pgEnv(pg, database), TMPDIR: tmp },
        watch: [dir, tmp],
      });
      const outputBytes = statSync(path.join(dir, 'dump.pgc')).size;
      const old = bench[slot];
      if (old) rmSync(old, { recursive: true, force: true });
      bench[slot] = dir;
      return { m, outputBytes };
    },
  };
}

/** The target `pg` of the configs: the bench database through the cluster's own pg_dump. */
export function pgTarget(bench: Bench, pg: PgServer, database = PG_DATABASE): Record<string, unknown> {
  return { driver: 'pg_dump', url: bench.pgUrl(pg, database), bin: pg.binDir };
}

export async function pgConfig(bench: Bench, pg: PgServer): Promise<string> {
  return bench.writeConfig('pg', { pg: pgTarget(bench, pg) });
}

export async function pairPgBackup(bench: Bench): Promise<Row[]> {
  const pg = await bench.ensurePg();
  const config = await pgConfig(bench, pg);
  const a = pgDumpContender(bench, pg);
  const b = backupContender(bench, 'backupkit backup', config, 'pg', keeper(bench, 'pgStorage'));
  const samples = await runPair(bench, 'pg-backup', [a, b], { rounds: bench.options.rounds, cold: true, before: () => void psql(pg, 'CHECKPOINT') });
  const sa = sideOf(a, samples.get(a)!);
  const sb = sideOf(b, samples.get(b)!);
  bench.data.push(['pg_dump -Fc output', `${formatBytes(sa.outputBytes ?? 0)} (backupkit archive: ${formatBytes(sb.outputBytes ?? 0)})`]);
  return [backupRow('pg-backup', sa, sb)];
}

/** A pg_dump file and a backupkit backup of the database, made untimed when pg-backup did not run. */
async function ensurePgArtifacts(bench: Bench, pg: PgServer): Promise<void> {
  if (!bench.pgDumpDir) {
    log('pg-restore: making the pg_dump file (untimed)');
    await pgDumpContender(bench, pg).run();
  }
  if (!bench.pgStorage) {
    log('pg-restore: making the backupkit backup (untimed)');
    await backupContender(bench, 'backupkit backup', await pgConfig(bench, pg), 'pg', keeper(bench, 'pgStorage')).run();
  }
}

export async function pairPgRestore(bench: Bench): Promise<Row[]> {
  const pg = await bench.ensurePg();
  await ensurePgArtifacts(bench, pg);
  const config = await pgConfig(bench, pg);
  const dumpFile = path.join(bench.pgDumpDir!, 'dump.pgc');
  const storage = bench.pgStorage!;
  const a: Contender = {
    label: 'pg_restore',
    command: 'pg_restore --clean --if-exists --no-owner --single-transaction --no-password -d bench dump.pgc',
    async run() {
      const tmp = bench.fresh('tmp');
      const m = await measure({
        command: pgTool(pg, 'pg_restore'),
        args: ['--clean', '--if-exists', '--no-owner', '--single-transaction', '--no-password', `--dbname=${PG_DATABASE}`, dumpFile],
        env: { ...pgEnv(pg), TMPDIR: tmp },
        watch: [bench.pgDumpDir!, tmp],
      });
      return { m, outputBytes: null };
    },
  };
  const b: Contender = {
    label: 'backupkit restore --yes --no-snapshot',
    command: `backupkit restore pg <id> --yes --no-snapshot`,
    async run() {
      const m = await measure(bench.backupkit(config, storage.dir, ['restore', 'pg', storage.id, '--yes', '--no-snapshot']));
      return { m, outputBytes: null };
    },
  };
  const samples = await runPair(bench, 'pg-restore', [a, b], { rounds: bench.options.rounds, cold: true, before: () => void psql(pg, 'CHECKPOINT') });
  // The database must still hold what was built.
  const accounts = Number(psql(pg, 'SELECT count(*) FROM pgbench_accounts'));
  const docs = Number(psql(pg, 'SELECT count(*) FROM docs'));
  if (accounts !== bench.pgData!.scale * 100_000 || docs !== bench.pgData!.docs) {
    throw new Error(`after the restores the database holds ${accounts} accounts and ${docs} docs, expected ${bench.pgData!.scale * 100_000} and ${bench.pgData!.docs}`);
  }
  psql(pg, 'VACUUM ANALYZE');
  const sa = sideOf(a, samples.get(a)!);
  const sb = sideOf(b, samples.get(b)!);
  return [backupRow('pg-restore', sa, sb)];
}

/**
 * pg-restore-mid: backupkit restore of `bench_mid` (about 0.5 GB) against pg_restore of a pg_dump
 * file of it, with --single-transaction as backupkit runs it, and without (pg_restore's default).
 */
export async function pairPgRestoreMid(bench: Bench): Promise<Row[]> {
  const pg = await bench.ensurePgMid();
  const database = PG_MID_DATABASE;
  const config = await bench.writeConfig('pg-mid', { pg: pgTarget(bench, pg, database) });
  if (!bench.pgMidDumpDir) {
    log('pg-restore-mid: making the pg_dump file (untimed)');
    await pgDumpContender(bench, pg, database).run();
  }
  log('pg-restore-mid: making the backupkit backup (untimed)');
  let storage: StoredBackup | undefined;
  await backupContender(bench, 'backupkit backup', config, 'pg', (s) => (storage = s)).run();
  const dumpFile = path.join(bench.pgMidDumpDir!, 'dump.pgc');
  const pgRestore = (label: string, flags: string[]): Contender => ({
    label,
    command: `pg_restore --clean --if-exists --no-owner ${flags.map((f) => `${f} `).join('')}--no-password -d ${database} dump.pgc`,
    async run() {
      const tmp = bench.fresh('tmp');
      const m = await measure({
        command: pgTool(pg, 'pg_restore'),
        args: ['--clean', '--if-exists', '--no-owner', ...flags, '--no-password', `--dbname=${database}`, dumpFile],
        env: { ...pgEnv(pg, database), TMPDIR: tmp },
        watch: [bench.pgMidDumpDir!, tmp],
      });
      return { m, outputBytes: null };
    },
  });
  const single = pgRestore('pg_restore --single-transaction', ['--single-transaction']);
  const plain = pgRestore('pg_restore', []);
  const b: Contender = {
    label: 'backupkit restore --yes --no-snapshot',
    command: 'backupkit restore pg <id> --yes --no-snapshot',
    async run() {
      const m = await measure(bench.backupkit(config, storage!.dir, ['restore', 'pg', storage!.id, '--yes', '--no-snapshot']));
      return { m, outputBytes: null };
    },
  };
  const samples = await runPair(bench, 'pg-restore-mid', [single, b, plain], { rounds: bench.options.rounds, cold: true, before: () => void psql(pg, 'CHECKPOINT', database) });
  const data = bench.pgMidData!;
  const accounts = Number(psql(pg, 'SELECT count(*) FROM pgbench_accounts', database));
  const docs = Number(psql(pg, 'SELECT count(*) FROM docs', database));
  if (accounts !== data.scale * 100_000 || docs !== data.docs) {
    throw new Error(`after the restores ${database} holds ${accounts} accounts and ${docs} docs, expected ${data.scale * 100_000} and ${data.docs}`);
  }
  psql(pg, 'VACUUM ANALYZE', database);
  const sb = sideOf(b, samples.get(b)!);
  const plainMax = 1.1;
  return [
    backupRow('pg-restore-mid', sideOf(single, samples.get(single)!), sb),
    row('pg-restore-mid (plain)', sideOf(plain, samples.get(plain)!), sb, `B/A ≤ ${plainMax.toFixed(2)}, RSS ≤ 150 MB, scratch 0`, (r) => [checks.ratio(r, plainMax), checks.rss(sb), checks.scratch(sb)]),
  ];
}
