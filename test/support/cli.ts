/** Running the built CLI (bin/backupkit.js) as an operator would, in a temp folder. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';

export const BIN = fileURLToPath(new URL('../../bin/backupkit.js', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (with --json). */
  json<T = any>(): T;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string;
  timeoutMs?: number;
}

export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? process.cwd(),
      env: { ...process.env, CI: 'true', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    // The CLI may exit before it reads its stdin (a usage error): that is not the test's failure.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
    const timeoutMs = options.timeoutMs ?? 110_000;
    const timer = setTimeout(() => {
      // Say what the CLI was waiting on, then stop it and the tools it started (in their own groups).
      const tools = child.pid === undefined ? [] : processesUnder(child.pid);
      stderr += `\n[runCli: no exit after ${timeoutMs} ms; its child processes: ${tools.map((t) => `${t.pid} ${t.state} ${t.cmdline}`).join('; ') || 'none'}]\n`;
      for (const tool of tools) {
        try {
          process.kill(tool.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve(cliResult(code, signal, stdout, stderr));
    });
  });
}

/** A temp folder removed when the test ends. */
export function tempDir(prefix = 'backupkit-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Write a config file into `dir` and return its path. */
export function writeConfig(dir: string, config: unknown, name = 'backupkit.config.json'): string {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** What a finished CLI run gave: exit, output, and stdout as JSON on demand. */
export function cliResult(code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string): CliResult {
  return {
    code,
    signal,
    stdout,
    stderr,
    json() {
      try {
        return JSON.parse(stdout);
      } catch {
        throw new Error(`stdout is not one JSON document:\n${stdout}\nstderr:\n${stderr}`);
      }
    },
  };
}

/** The live processes whose parent is `pid`, from /proc: command name, state (R, S, D...) and command line. */
export function processesUnder(pid: number): { pid: number; name: string; state: string; cmdline: string }[] {
  const out: { pid: number; name: string; state: string; cmdline: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      if (Number(fields[1]) !== pid || fields[0] === 'Z') continue;
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      out.push({ pid: Number(entry), name: stat.slice(stat.indexOf('(') + 1, close), state: fields[0]!, cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
