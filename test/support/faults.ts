/**
 * Helpers for the fault tests: the CLI run in the background (so a test can stop, kill or race it),
 * the processes it started, the files a run leaves behind in a storage folder, and crash points.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { BIN, type CliResult, cliResult, processesUnder } from './cli.js';

/** The preload that kills the CLI at a crash point (crash.mjs). */
export const CRASH_PRELOAD = fileURLToPath(new URL('./crash.mjs', import.meta.url));

export interface BackgroundCli {
  pid: number;
  /** Resolves once the process has exited, with what it printed. */
  done: Promise<CliResult>;
  stderr(): string;
}

/**
 * Start the CLI without waiting for it. `crashAfter` ("<fs op>|<path regex>[|<n>]") makes it
 * SIGKILL itself right after the n-th matching fs/promises call: a crash at a chosen point.
 * Killed (SIGKILL) when the test ends if it still runs.
 */
export function startCli(args: string[], options: { cwd: string; env?: Record<string, string>; crashAfter?: string }): BackgroundCli {
  const env: Record<string, string | undefined> = { ...process.env, CI: 'true', ...options.env };
  if (options.crashAfter) {
    env.NODE_OPTIONS = `--import=${CRASH_PRELOAD}`;
    env.BACKUPKIT_CRASH_AFTER = options.crashAfter;
  }
  const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(cliResult(code, signal, stdout, stderr)));
  });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { pid: child.pid!, done, stderr: () => stderr };
}

/** Poll `check` until it holds; fails the test with `what` after `ms`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped) is not alive; nor is a process gone since the signal.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The live children of `pid` (by /proc), with their command names. */
export function childrenOf(pid: number): { pid: number; name: string }[] {
  return processesUnder(pid).map(({ pid: child, name }) => ({ pid: child, name }));
}

/** What a storage folder holds, hidden files included, .locks aside. */
export function storageFiles(store: string): string[] {
  return existsSync(store) ? readdirSync(store).filter((f) => f !== '.locks').sort() : [];
}

/** Temporary files of runs (`.<id>.<name>.<pid>.partial`). */
export function partialFiles(store: string): string[] {
  return storageFiles(store).filter((f) => f.endsWith('.partial'));
}

/** The lock files held in a storage folder. */
export function lockFiles(store: string): string[] {
  const dir = path.join(store, '.locks');
  return existsSync(dir) ? readdirSync(dir) : [];
}
