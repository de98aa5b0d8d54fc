/**
 * The encryption pairs, on the pg database and its archive:
 *   age-backup    `backupkit backup` of the database to a target with age recipients, against the
 *                 same backup unencrypted (pg-backup's B)
 *   age-restore   `backupkit restore --identity` of that encrypted backup, against the restore of
 *                 the unencrypted one (pg-restore's B)
 *   age-encrypt   backupkit's encryption of the unencrypted archive (bench/age-encrypt.ts, the
 *                 pipeline's own AgeEncrypt) against `age -e -r` of the same file
 * They need the age CLI (age-keygen makes the key pair, age -e is A, age -d checks B's output);
 * without it they are skipped, the report saying why.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PgServer } from '../../test/support/postgres.js';
import { type Bench, type StoredBackup, log } from '../bench.js';
import { psql } from '../data.js';
import { measure } from '../measure.js';
import { type Row } from '../report.js';
import { type Contender, runPair, sideOf } from '../rounds.js';
import { backupRow, checks, row } from '../targets.js';
import { backupContender, keeper } from './backupkit.js';
import { pgConfig, pgTarget } from './pg.js';

const PLAIN = 'B/A ≤ 1.05, RSS ≤ 150 MB, scratch 0 (A: the same unencrypted)';

interface AgeTools {
  age: string;
  version: string;
  identity: string;
  recipient: string;
}

/** The age CLI and a key pair in the work folder, made once; undefined (and the pair skipped) without age. */
function ageTools(bench: Bench, pair: string): AgeTools | undefined {
  if (bench.ageTools) return bench.ageTools;
  try {
    const version = execFileSync('age', ['--version'], { encoding: 'utf8' }).trim();
    const identity = path.join(bench.fresh('age-key'), 'key.txt');
    execFileSync('age-keygen', ['-o', identity], { stdio: 'ignore' });
    const recipient = execFileSync('age-keygen', ['-y', identity], { encoding: 'utf8' }).trim();
    bench.ageTools = { age: 'age', version, identity, recipient };
    return bench.ageTools;
  } catch {
    const reason = 'the age CLI is not installed (apt-get install age)';
    log(`${pair}: skipped: ${reason}`);
    bench.skipped.push({ pair, reason });
    return undefined;
  }
}

async function ageConfig(bench: Bench, pg: PgServer, tools: AgeTools): Promise<string> {
  return bench.writeConfig('pg-age', { pg: { ...pgTarget(bench, pg), encryption: { recipients: [tools.recipient] } } });
}

export async function pairAgeBackup(bench: Bench): Promise<Row[]> {
  const tools = ageTools(bench, 'age-backup');
  if (!tools) return [];
  const pg = await bench.ensurePg();
  const a = backupContender(bench, 'backupkit backup', await pgConfig(bench, pg), 'pg', keeper(bench, 'pgStorage'));
  const b = backupContender(bench, 'backupkit backup (age recipient)', await ageConfig(bench, pg, tools), 'pg', keeper(bench, 'pgAgeStorage'));
  b.command = 'backupkit backup pg (encryption: {recipients: [age1...]})';
  const samples = await runPair(bench, 'age-backup', [a, b], { rounds: bench.options.rounds, cold: true, before: () => void psql(pg, 'CHECKPOINT') });
  return [backupRow('age-backup', sideOf(a, samples.get(a)!), sideOf(b, samples.get(b)!), PLAIN)];
}

/** The unencrypted and the encrypted backup of the database, made untimed when age-backup did not run. */
async function ensureBackups(bench: Bench, pg: PgServer, tools: AgeTools): Promise<{ plain: StoredBackup; sealed: StoredBackup }> {
  if (!bench.pgStorage) {
    log('age-restore: making the unencrypted backup (untimed)');
    await backupContender(bench, 'backupkit backup', await pgConfig(bench, pg), 'pg', keeper(bench, 'pgStorage')).run();
  }
  if (!bench.pgAgeStorage) {
    log('age-restore: making the encrypted backup (untimed)');
    await backupContender(bench, 'backupkit backup', await ageConfig(bench, pg, tools), 'pg', keeper(bench, 'pgAgeStorage')).run();
  }
  return { plain: bench.pgStorage!, sealed: bench.pgAgeStorage! };
}

export async function pairAgeRestore(bench: Bench): Promise<Row[]> {
  const tools = ageTools(bench, 'age-restore');
  if (!tools) return [];
  const pg = await bench.ensurePg();
  const { plain, sealed } = await ensureBackups(bench, pg, tools);
  const plainConfig = await pgConfig(bench, pg);
  const sealedConfig = await ageConfig(bench, pg, tools);
  const restore = (label: string, config: string, stored: StoredBackup, extra: string[]): Contender => ({
    label,
    command: `backupkit restore pg <id> --yes --no-snapshot${extra.length ? ' --identity key.txt' : ''}`,
    async run() {
      const m = await measure(bench.backupkit(config, stored.dir, [...extra, 'restore', 'pg', stored.id, '--yes', '--no-snapshot']));
      return { m, outputBytes: null };
    },
  });
  const a = restore('backupkit restore', plainConfig, plain, []);
  const b = restore('backupkit restore --identity', sealedConfig, sealed, ['--identity', tools.identity]);
  const samples = await runPair(bench, 'age-restore', [a, b], { rounds: bench.options.rounds, cold: true, before: () => void psql(pg, 'CHECKPOINT') });
  const accounts = Number(psql(pg, 'SELECT count(*) FROM pgbench_accounts'));
  const docs = Number(psql(pg, 'SELECT count(*) FROM docs'));
  if (accounts !== bench.pgData!.scale * 100_000 || docs !== bench.pgData!.docs) {
    throw new Error(`after the restores the database holds ${accounts} accounts and ${docs} docs, expected ${bench.pgData!.scale * 100_000} and ${bench.pgData!.docs}`);
  }
  psql(pg, 'VACUUM ANALYZE');
  return [backupRow('age-restore', sideOf(a, samples.get(a)!), sideOf(b, samples.get(b)!), PLAIN)];
}

export async function pairAgeEncrypt(bench: Bench): Promise<Row[]> {
  const tools = ageTools(bench, 'age-encrypt');
  if (!tools) return [];
  if (!bench.pgStorage) {
    log('age-encrypt: making the backup whose archive is encrypted (untimed)');
    const pg = await bench.ensurePg();
    await backupContender(bench, 'backupkit backup', await pgConfig(bench, pg), 'pg', keeper(bench, 'pgStorage')).run();
  }
  const input = path.join(bench.pgStorage!.dir, `${bench.pgStorage!.id}.zip`);
  const size = statSync(input).size;
  const script = fileURLToPath(new URL('../age-encrypt.js', import.meta.url));
  const encrypt = (label: string, command: string, spec: (out: string) => { command: string; args: string[] }): Contender => ({
    label,
    command,
    async run() {
      const dir = bench.fresh('age-out');
      const out = path.join(dir, 'archive.zip.age');
      const m = await measure({ ...spec(out), watch: [dir] });
      // The output must be an age file for the key, holding the input: age -d checks it (untimed).
      const plain = execFileSync(tools.age, ['-d', '-i', tools.identity, out], { maxBuffer: size + 1024 });
      if (!plain.equals(readFileSync(input))) throw new Error(`${label}: age -d of the output is not the input archive`);
      return { m, outputBytes: statSync(out).size };
    },
  });
  const a = encrypt('age -e', 'age -e -r age1... -o out <archive>', (out) => ({ command: tools.age, args: ['-e', '-r', tools.recipient, '-o', out, input] }));
  const b = encrypt('backupkit AgeEncrypt', 'node bench/age-encrypt.js age1... <archive> out', (out) => ({ command: process.execPath, args: [script, tools.recipient, input, out] }));
  const samples = await runPair(bench, 'age-encrypt', [a, b], { rounds: bench.options.rounds, cold: false });
  const sa = sideOf(a, samples.get(a)!);
  const sb = sideOf(b, samples.get(b)!);
  const mbps = (ms: number) => `${(size / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
  bench.notes.push(`age-encrypt: the pg backup's archive, ${(size / 1e6).toFixed(0)} MB, warm; ${tools.version.startsWith('v') ? 'age ' : ''}${tools.version}: age -e ${mbps(sa.medianMs)}, backupkit ${mbps(sb.medianMs)} (including Node's start-up).`);
  return [row('age-encrypt', sa, sb, 'B/A ≤ 1.00 (at least as fast as age -e), RSS ≤ 150 MB', (r) => [checks.ratio(r, 1), checks.rss(sb)])];
}


