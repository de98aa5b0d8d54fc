/**
 * A throwaway PostgreSQL cluster: initdb in a temp folder, postgres on a free loopback port with
 * password (scram) authentication over TCP, run as the postgres user when the tests run as root.
 * `halt` shuts it down as an operator would (fast: sessions are ended, open transactions rolled
 * back) and keeps its data; `start` brings it back on the same port.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, chownSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

export interface PgServer {
  host: string;
  port: number;
  user: string;
  password: string;
  binDir: string;
  /** Stop the server and remove its data. */
  stop(): Promise<void>;
  /** Fast shutdown (pg_ctl stop -m fast), keeping the data. */
  halt(): Promise<void>;
  /** Start it again after `halt`, on the same port. */
  start(): Promise<void>;
}

export const PG_PASSWORD = 'Tr0ub4dor&3-s3cr3t';

function findBinDir(): string {
  const candidates = ['/usr/lib/postgresql'].flatMap((root) =>
    existsSync(root)
      ? readdirSync(root)
          .sort((a, b) => Number(b) - Number(a))
          .map((v) => path.join(root, v, 'bin'))
      : [],
  );
  for (const dir of candidates) if (existsSync(path.join(dir, 'initdb'))) return dir;
  for (const dir of (process.env.PATH ?? '').split(':')) if (existsSync(path.join(dir, 'initdb'))) return dir;
  throw new Error('PostgreSQL server binaries (initdb, postgres) not found: install postgresql (bash .ci/run does)');
}

export async function startPostgres(): Promise<PgServer> {
  const binDir = findBinDir();
  const root = mkdtempSync(path.join(os.tmpdir(), 'backupkit-pg-'));
  const data = path.join(root, 'data');
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) =>
    asRoot ? execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdio: 'pipe' }) : execFileSync(cmd, args, { stdio: 'pipe' });
  const pwfile = path.join(root, 'pw');
  writeFileSync(pwfile, PG_PASSWORD, { mode: 0o600 });
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(root, uid, gid);
    chownSync(pwfile, uid, gid);
  }
  run(path.join(binDir, 'initdb'), ['-D', data, '-U', 'postgres', '--pwfile', pwfile, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
  rmSync(pwfile);
  const port = await freePort();
  const args = ['-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', root, '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'synchronous_commit=off', '-c', 'max_connections=60'];
  let child: ChildProcess;
  const launch = async () => {
    const started: ChildProcess = asRoot
      ? spawn('runuser', ['-u', 'postgres', '--', path.join(binDir, 'postgres'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(path.join(binDir, 'postgres'), args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = started;
    let log = '';
    started.stderr?.on('data', (c: Buffer) => (log += c.toString()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        execFileSync(path.join(binDir, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
        break;
      } catch {
        if (Date.now() > deadline || started.exitCode !== null) throw new Error(`PostgreSQL did not start:\n${log}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  const shutdown = async (mode: 'fast' | 'immediate') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    try {
      run(path.join(binDir, 'pg_ctl'), ['stop', '-D', data, '-m', mode, '-w', '-t', '20']);
    } catch {
      child.kill('SIGKILL');
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
  };
  await launch();
  return {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password: PG_PASSWORD,
    binDir,
    async stop() {
      await shutdown('immediate');
      rmSync(root, { recursive: true, force: true });
    },
    halt: () => shutdown('fast'),
    start: launch,
  };
}
