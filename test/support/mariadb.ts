/**
 * A throwaway MariaDB server: mariadb-install-db into a temp folder, mariadbd on a free loopback
 * port and a socket in that folder (run as the mysql user when the tests run as root), and a user
 * `bk` with every privilege and a password full of characters that need quoting.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

export interface MariadbServer {
  host: string;
  port: number;
  user: string;
  password: string;
  socket: string;
  stop(): Promise<void>;
}

export const MYSQL_USER = 'bk';
export const MYSQL_PASSWORD = `Sp3c!al'"#pw \\ end`;

function findServer(): string {
  for (const candidate of ['/usr/sbin/mariadbd', '/usr/sbin/mysqld', '/usr/libexec/mariadbd']) if (existsSync(candidate)) return candidate;
  for (const dir of (process.env.PATH ?? '').split(':')) if (existsSync(path.join(dir, 'mariadbd'))) return path.join(dir, 'mariadbd');
  throw new Error('MariaDB server (mariadbd) not found: install mariadb-server (bash .ci/run does)');
}

/** Run a tool to completion, feeding `input` on stdin; rejects with its stderr when it fails. */
function run(command: string, args: string[], input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${err}`))));
    // A tool that exits without reading its stdin makes this write fail with EPIPE; its exit code
    // is what counts, so the write error must not crash the test run.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

function sqlString(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

export async function startMariadb(): Promise<MariadbServer> {
  const server = findServer();
  const root = mkdtempSync(path.join(os.tmpdir(), 'backupkit-mariadb-'));
  const data = path.join(root, 'data');
  const socket = path.join(root, 'sock');
  const asRoot = process.getuid?.() === 0;
  const userArgs = asRoot ? ['--user=mysql'] : [];
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'mysql']).toString());
    const gid = Number(execFileSync('id', ['-g', 'mysql']).toString());
    chownSync(root, uid, gid);
  }
  await run('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, ...userArgs, '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve']);
  const port = await freePort();
  const child: ChildProcess = spawn(
    server,
    [
      '--no-defaults',
      `--datadir=${data}`,
      `--tmpdir=${root}`,
      `--socket=${socket}`,
      `--pid-file=${path.join(root, 'mariadb.pid')}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      '--skip-networking=0',
      '--skip-name-resolve',
      ...userArgs,
      '--innodb-flush-log-at-trx-commit=0',
      '--innodb-doublewrite=0',
      '--innodb-buffer-pool-size=64M',
      '--skip-log-bin',
      '--character-set-server=utf8mb4',
      '--collation-server=utf8mb4_general_ci',
      '--max-allowed-packet=256M',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-8000)));
  const asRootClient = ['--no-defaults', `--socket=${socket}`, '--user=root'];
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await run('mariadb-admin', [...asRootClient, 'ping']);
      break;
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`MariaDB did not start:\n${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const grants = ['127.0.0.1', 'localhost']
    .map((host) => `CREATE USER '${MYSQL_USER}'@'${host}' IDENTIFIED BY ${sqlString(MYSQL_PASSWORD)};
      GRANT ALL PRIVILEGES ON *.* TO '${MYSQL_USER}'@'${host}' WITH GRANT OPTION;`)
    .join('\n');
  await run('mariadb', asRootClient, grants);
  return {
    host: '127.0.0.1',
    port,
    user: MYSQL_USER,
    password: MYSQL_PASSWORD,
    socket,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        await run('mariadb-admin', [...asRootClient, 'shutdown']).catch(() => child.kill('SIGKILL'));
        const stopped = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 10_000))]);
        if (!stopped) child.kill('SIGKILL');
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}
