/** The benchmark's results as markdown: the summary table, then the details and every run. */

export interface Check {
  /** e.g. "B/A ≤ 1.05" */
  label: string;
  ok: boolean;
  /** Shown when the check fails, e.g. "1.31". */
  actual: string;
}

export interface Side {
  label: string;
  command: string;
  runsMs: number[];
  medianMs: number;
  /** Peak RSS of the command's own process (backupkit's node), largest over the timed runs. */
  peakRssKb: number;
  /** GNU time's maximum RSS: the largest single process of the tree (may be the dump tool). */
  largestProcessRssKb: number;
  /** Largest sampled sum of RSS over the process tree. */
  treeRssKb: number;
  /** User + system CPU seconds of each timed run (the whole tree, as GNU time counts them). */
  cpuS: number[];
  scratchBytes: number;
  /** Size of what the run wrote (dump file or archive), last run. */
  outputBytes: number | null;
}

export interface Row {
  pair: string;
  a: Side | null;
  b: Side;
  /** B median / A median */
  ratio: number | null;
  /** Targets as text, e.g. "B/A ≤ 1.05, RSS ≤ 150 MB, scratch 0". */
  target: string;
  checks: Check[];
}

export interface ReportInput {
  title: string;
  date: string;
  mode: 'full' | 'quick';
  /** The pairs run, when `--only` chose some of them. */
  only: string[] | undefined;
  rounds: number;
  machine: [string, string][];
  data: [string, string][];
  method: string[];
  rows: Row[];
  /** Pairs that did not run here, and why. */
  skipped: { pair: string; reason: string }[];
  notes: string[];
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${((ms % 60_000) / 1000).toFixed(1)} s`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** kB (as /proc and GNU time count them, 1024 bytes) to MB (10^6 bytes), the unit of the targets. */
export function formatRss(kb: number): string {
  return `${((kb * 1024) / 1e6).toFixed(0)} MB`;
}

export function rowPassed(row: Row): boolean {
  return row.checks.every((c) => c.ok);
}

function result(row: Row): string {
  const failed = row.checks.filter((c) => !c.ok);
  if (failed.length === 0) return 'pass';
  return `**FAIL** (${failed.map((c) => `${c.label}: ${c.actual}`).join('; ')})`;
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|');
}

export function summaryTable(rows: Row[]): string {
  const header = ['pair', 'A', 'A median', 'B', 'B median', 'B/A', 'peak RSS (B)', 'scratch (B)', 'target', 'result'];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of rows) {
    lines.push(
      `| ${[
        row.pair,
        row.a ? `\`${cell(row.a.label)}\`` : '—',
        row.a ? formatMs(row.a.medianMs) : '—',
        `\`${cell(row.b.label)}\``,
        formatMs(row.b.medianMs),
        row.ratio === null ? '—' : row.ratio.toFixed(2),
        formatRss(row.b.peakRssKb),
        formatBytes(row.b.scratchBytes),
        row.target,
        result(row),
      ].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

/** The same table in plain text for the terminal. */
export function terminalTable(rows: Row[]): string {
  const header = ['pair', 'A median', 'B', 'B median', 'B/A', 'RSS(B)', 'scratch(B)', 'result'];
  const body = rows.map((row) => [
    row.pair,
    row.a ? formatMs(row.a.medianMs) : '-',
    row.b.label,
    formatMs(row.b.medianMs),
    row.ratio === null ? '-' : row.ratio.toFixed(2),
    formatRss(row.b.peakRssKb),
    formatBytes(row.b.scratchBytes),
    rowPassed(row) ? 'pass' : `FAIL ${row.checks.filter((c) => !c.ok).map((c) => `${c.label}: ${c.actual}`).join('; ')}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...body.map(line)].join('\n');
}

function runsTable(rows: Row[]): string {
  const lines = [
    '| pair | side | command | runs | median | CPU (user+sys) | peak RSS (own) | largest process | tree (sampled) | scratch | output |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const seen = new Set<string>();
  for (const row of rows) {
    for (const [name, side] of [['A', row.a], ['B', row.b]] as const) {
      if (!side) continue;
      const key = `${row.pair}\u0000${side.command}`;
      if (seen.has(key)) continue;
      seen.add(key);
      lines.push(
        `| ${row.pair} | ${name} | \`${cell(side.command)}\` | ${side.runsMs.map(formatMs).join(', ')} | ${formatMs(side.medianMs)} | ${side.cpuS.map((c) => `${c.toFixed(2)} s`).join(', ')} | ${formatRss(side.peakRssKb)} | ${formatRss(side.largestProcessRssKb)} | ${formatRss(side.treeRssKb)} | ${formatBytes(side.scratchBytes)} | ${side.outputBytes === null ? '—' : formatBytes(side.outputBytes)} |`,
      );
    }
  }
  return lines.join('\n');
}

export function renderReport(input: ReportInput): string {
  const failed = input.rows.filter((r) => !rowPassed(r));
  const kv = (pairs: [string, string][]) => pairs.map(([k, v]) => `| ${k} | ${cell(v)} |`).join('\n');
  return [
    `# ${input.title}`,
    '',
    `${input.date}, ${input.mode} run${input.only ? ` of ${input.only.join(', ')} only` : ''}, ${input.rounds} timed round(s) per pair. ${input.rows.length - failed.length} of ${input.rows.length} rows meet their target${failed.length ? `; FAIL: ${failed.map((r) => `${r.pair} (${r.b.label})`).join(', ')}` : ''}.${input.skipped.map((s) => ` Skipped: ${s.pair} (${s.reason}).`).join('')}`,
    '',
    '## Results',
    '',
    summaryTable(input.rows),
    '',
    'A is the raw tool, B is backupkit. Times are medians of the timed runs; peak RSS and scratch are the',
    'largest seen over B\'s timed runs.',
    '',
    '## Machine',
    '',
    '| | |',
    '|---|---|',
    kv(input.machine),
    '',
    '## Data',
    '',
    '| | |',
    '|---|---|',
    kv(input.data),
    '',
    '## Method',
    '',
    ...input.method.map((m) => `- ${m}`),
    '',
    '## Notes',
    '',
    ...input.notes.map((n) => `- ${n}`),
    '',
    '## Every run',
    '',
    runsTable(input.rows),
    '',
  ].join('\n');
}
