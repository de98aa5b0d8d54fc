/**
 * Runs one command under `/usr/bin/time -v` and measures it:
 *   wall time     the harness's monotonic clock from spawn to exit (GNU time's own "Elapsed" is
 *                 kept too, but it only has centisecond resolution)
 *   peak RSS      of the command's own process: its VmHWM (the kernel's high-water mark of its
 *                 resident set), read from /proc every ~50 ms while it runs. GNU time's "Maximum
 *                 resident set size" is kept too, but that is the largest single process of the
 *                 tree (wait4's ru_maxrss): for backupkit it may be pg_dump's or mongodump's
 *   tree RSS      the largest sum of VmRSS over the command and its descendants, sampled
 *   scratch       the watched folders' total size is sampled every ~50 ms; scratch is the peak
 *                 total minus the total once the command has exited, i.e. what was on disk at some
 *                 point beyond what the command left behind (its archive, sidecar, history line)
 * The harness's own event loop stays idle while a command runs (servers run in other processes),
 * so the exit is seen within a millisecond.
 */
import { spawn } from 'node:child_process';
import { closeSync, lstatSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface RunSpec {
  command: string;
  args: string[];
  /** Added to the harness's environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** Folders whose total size is sampled (created before the run by the caller). */
  watch?: string[];
  /** Keep stdout (else it goes to /dev/null). */
  captureStdout?: boolean;
  /** Kill the command after this long (default 2 h). */
  timeoutMs?: number;
}

export interface Measurement {
  wallMs: number;
  /** GNU time's elapsed wall clock, centisecond resolution. */
  timeWallMs: number | null;
  userS: number;
  sysS: number;
  /** GNU time's maximum resident set size: the largest single process of the tree. */
  maxRssKb: number;
  /** VmHWM of the command's own process (0 when it ended before the first sample). */
  ownPeakRssKb: number;
  /** Largest sampled sum of VmRSS over the command's process tree. */
  treePeakRssKb: number;
  peakWatchedBytes: number;
  finalWatchedBytes: number;
  scratchBytes: number;
  samples: number;
  stdout: string;
}

export class CommandFailed extends Error {
  constructor(
    readonly spec: RunSpec,
    readonly exitCode: number | null,
    readonly stderrTail: string,
  ) {
    super(`${describe(spec)} failed (exit ${exitCode ?? 'signal'}):\n${stderrTail}`);
  }
}

export function describe(spec: RunSpec): string {
  return [spec.command, ...spec.args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
}

/** Total size in bytes of the files under `dir` (0 when it is gone); races with the writer are fine. */
export function folderBytes(dir: string): number {
  let total = 0;
  let names: import('node:fs').Dirent[];
  try {
    names = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of names) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) total += folderBytes(file);
    else {
      try {
        total += lstatSync(file).size;
      } catch {
        // removed or renamed between readdir and stat
      }
    }
  }
  return total;
}

const SAMPLE_MS = 50;

/** Where the per-run scratch (GNU time's report, captured stdout) goes; the harness's work folder. */
let scratchRoot = os.tmpdir();
export function setScratchRoot(dir: string): void {
  scratchRoot = dir;
}

/** Process groups of the commands running now, so that an interrupted harness can stop them. */
const running = new Set<number>();
let stopped = false;

/** Stop the commands under way; no command starts after this. */
export function killRunning(): void {
  stopped = true;
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

function readProc(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  return (readProc(`/proc/${pid}/task/${pid}/children`) ?? '').split(/\s+/).filter(Boolean).map(Number);
}

function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readProc(`/proc/${pid}/status`) ?? '');
  return match ? Number(match[1]) : 0;
}

/** Memory of the process tree under `timePid` (the /usr/bin/time wrapper, not counted). */
class RssSampler {
  ownPeakKb = 0;
  treePeakKb = 0;
  private rootPid: number | undefined;

  constructor(private readonly timePid: number) {}

  sample(): void {
    this.rootPid ??= childrenOf(this.timePid)[0];
    if (this.rootPid === undefined) return;
    this.ownPeakKb = Math.max(this.ownPeakKb, statusKb(this.rootPid, 'VmHWM'));
    let tree = 0;
    const stack = [this.rootPid];
    while (stack.length > 0) {
      const pid = stack.pop()!;
      tree += statusKb(pid, 'VmRSS');
      stack.push(...childrenOf(pid));
    }
    this.treePeakKb = Math.max(this.treePeakKb, tree);
  }
}
const STDERR_TAIL = 4000;

/** Parses the report of `/usr/bin/time -v`. */
export function parseTimeReport(text: string): { timeWallMs: number | null; userS: number; sysS: number; maxRssKb: number } {
  const field = (name: string) => new RegExp(`^\\s*${name.replace(/[()]/g, '\\$&')}:\\s*(.+)$`, 'm').exec(text)?.[1]?.trim();
  const elapsed = field('Elapsed (wall clock) time (h:mm:ss or m:ss)');
  let timeWallMs: number | null = null;
  if (elapsed) {
    const parts = elapsed.split(':').map(Number);
    let seconds = 0;
    for (const p of parts) seconds = seconds * 60 + p;
    if (Number.isFinite(seconds)) timeWallMs = seconds * 1000;
  }
  const maxRss = field('Maximum resident set size (kbytes)');
  if (maxRss === undefined) throw new Error(`no "Maximum resident set size" in the report of /usr/bin/time:\n${text}`);
  return {
    timeWallMs,
    userS: Number(field('User time (seconds)') ?? 0),
    sysS: Number(field('System time (seconds)') ?? 0),
    maxRssKb: Number(maxRss),
  };
}

export async function measure(spec: RunSpec): Promise<Measurement> {
  if (stopped) throw new Error('the harness is stopping');
  const reportDir = mkdtempSync(path.join(scratchRoot, 'time-'));
  const reportFile = path.join(reportDir, 'time.txt');
  const watch = spec.watch ?? [];
  const watched = () => watch.reduce((sum, dir) => sum + folderBytes(dir), 0);
  let peak = watched();
  let samples = 1;
  let rss: RssSampler | undefined;
  const sampler = setInterval(() => {
    peak = Math.max(peak, watched());
    rss?.sample();
    samples++;
  }, SAMPLE_MS);
  try {
    // stdout goes to a file, not a pipe: the command's output is not paced by the harness reading it.
    const stdoutFile = path.join(reportDir, 'stdout');
    const stdoutFd = spec.captureStdout ? openSync(stdoutFile, 'w') : 'ignore';
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-v', '-o', reportFile, spec.command, ...spec.args], {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      stdio: ['ignore', stdoutFd, 'pipe'],
      // Its own process group: an interrupted harness stops the command and its children.
      detached: true,
    });
    const pid = child.pid;
    if (pid !== undefined) running.add(pid);
    if (typeof stdoutFd === 'number') closeSync(stdoutFd);
    if (child.pid !== undefined) rss = new RssSampler(child.pid);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_TAIL);
    });
    const timeout = setTimeout(() => pid !== undefined && process.kill(-pid, 'SIGKILL'), spec.timeoutMs ?? 2 * 3600_000);
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => resolve(code));
    });
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    clearTimeout(timeout);
    if (pid !== undefined) running.delete(pid);
    // Let stderr drain (it closes right after exit).
    await new Promise<void>((resolve) => {
      if (child.stderr && !child.stderr.closed) child.stderr.once('close', () => resolve());
      else resolve();
    });
    clearInterval(sampler);
    const stdout = spec.captureStdout ? readFileSync(stdoutFile, 'utf8') : '';
    const final = watched();
    peak = Math.max(peak, final);
    samples++;
    if (exitCode !== 0) throw new CommandFailed(spec, exitCode, stderr.trim());
    const report = parseTimeReport(readFileSync(reportFile, 'utf8'));
    return { wallMs, ...report, ownPeakRssKb: rss?.ownPeakKb ?? 0, treePeakRssKb: rss?.treePeakKb ?? 0, peakWatchedBytes: peak, finalWatchedBytes: final, scratchBytes: peak - final, samples, stdout };
  } finally {
    clearInterval(sampler);
    rmSync(reportDir, { recursive: true, force: true });
  }
}

/** The median of a non-empty list. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
