/** Facts about the machine and the tools, for the report's first table. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Bench, MONGO_BIN, REPO } from './bench.js';
import { formatBytes } from './report.js';

function commandLine(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]!.trim();
  } catch {
    return 'n/a';
  }
}

export function machineInfo(bench: Bench): [string, string][] {
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
  if (bench.s3Used) info.push(['S3 server', `s3rver ${packageVersion('s3rver')} with test/support/s3server's extensions, on loopback, in a process of its own`]);
  if (bench.awsCli) info.push(['AWS CLI', bench.awsCli]);
  return info;
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(REPO, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

/** Is the kernel's DAMON paging out idle memory (as on some VMs)? */
export function damonReclaim(): boolean {
  try {
    return readFileSync('/sys/kernel/mm/damon/admin/kdamonds/0/state', 'utf8').trim() === 'on';
  } catch {
    return false;
  }
}

/**
 * The machine's speed right now: SHA-256 throughput over 64 MiB in this process, in MB/s (10^6).
 * A shared or throttled VM can lose a third of its speed for minutes at a time; a probe before each
 * pair shows whether the pairs of one run, or two runs, saw the same machine.
 */
export function cpuProbe(): number {
  const block = Buffer.alloc(1 << 20, 0x5a);
  const started = process.hrtime.bigint();
  const hash = createHash('sha256');
  for (let i = 0; i < 64; i++) hash.update(block);
  hash.digest();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return (64 * 2 ** 20) / 1e6 / seconds;
}
