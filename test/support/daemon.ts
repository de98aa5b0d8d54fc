/** The built CLI's `daemon` as a child process: its JSON log lines, waits on them, and its end. */
import { spawn } from 'node:child_process';
import { onTestFinished } from 'vitest';
import { BIN } from './cli.js';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface DaemonProcess {
  pid: number;
  /** Every log line so far (stderr, JSON lines). */
  logs(): LogLine[];
  /** The lines so far that match. */
  count(match: (line: LogLine) => boolean): number;
  /** The first line (from index `from` on) that matches; fails after `ms`. */
  waitFor(what: string, match: (line: LogLine) => boolean, options?: { from?: number; ms?: number }): Promise<LogLine>;
  /** Where /healthz and /metrics are served (from the "listening on" line). */
  url(): Promise<string>;
  signal(signal: NodeJS.Signals): void;
  /** Send `signal` and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: string | null; stderr: string }>;
}

export function startDaemon(config: string, cwd: string): DaemonProcess {
  const child = spawn(process.execPath, [BIN, '-c', config, '--log-format', 'json', 'daemon'], {
    cwd,
    env: { ...process.env, CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let pending = '';
  const lines: LogLine[] = [];
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    pending += chunk.toString();
    const parts = pending.split('\n');
    pending = parts.pop()!;
    for (const part of parts) {
      if (!part.trim()) continue;
      try {
        lines.push(JSON.parse(part) as LogLine);
      } catch {
        lines.push({ level: 0, msg: part });
      }
    }
  });
  child.stdout.resume();
  const closed = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  let exited = false;
  void closed.then(() => (exited = true));
  onTestFinished(() => {
    if (!exited) child.kill('SIGKILL');
  });

  const waitFor: DaemonProcess['waitFor'] = async (what, match, options = {}) => {
    const deadline = Date.now() + (options.ms ?? 30_000);
    for (;;) {
      const found = lines.slice(options.from ?? 0).find(match);
      if (found) return found;
      if (exited) throw new Error(`the daemon exited before ${what}:\n${stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return {
    pid: child.pid!,
    logs: () => lines,
    count: (match) => lines.filter(match).length,
    waitFor,
    async url() {
      const line = await waitFor('the listening line', (l) => l.msg.startsWith('listening on '));
      return line.url as string;
    },
    signal: (signal) => child.kill(signal),
    async stop(signal = 'SIGTERM') {
      child.kill(signal);
      const end = await closed;
      return { ...end, stderr };
    },
  };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format (0.0.4): the samples, and each metric's TYPE. Throws on a line it cannot read. */
export function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line);
    if (!sample) throw new Error(`not Prometheus text: ${line}`);
    const labels: Record<string, string> = {};
    const labelText = sample[2] ?? '';
    const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    let match: RegExpExecArray | null;
    let read = 0;
    while ((match = label.exec(labelText))) {
      labels[match[1]!] = match[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      read = label.lastIndex;
    }
    if (read !== labelText.length) throw new Error(`bad labels in: ${line}`);
    const value = sample[3] === '+Inf' ? Infinity : sample[3] === '-Inf' ? -Infinity : Number(sample[3]);
    if (Number.isNaN(value) && sample[3] !== 'NaN') throw new Error(`bad value in: ${line}`);
    samples.push({ name: sample[1]!, labels, value });
  }
  return { samples, types };
}

/** The one sample of `name` with exactly these labels (undefined when there is none). */
export function sampleOf(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const found = samples.filter((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}
