/** What a finished run leaves: the table on stdout, and the markdown report in a file. */
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Bench, REPO } from './bench.js';
import { damonReclaim, machineInfo } from './machine.js';
import { median } from './measure.js';
import { PAIRS } from './options.js';
import { type Row, formatMs, renderReport, rowPassed, summaryTable, terminalTable } from './report.js';

/** Print the table and write the report: to --out, or for a full run to bench/results/<date>.md. */
export function publish(bench: Bench, rows: Row[], started: number): void {
  const options = bench.options;
  const elapsed = formatMs(Date.now() - started);
  const report = renderReport({
    title: `backupkit benchmark, ${today()}${options.quick ? ' (quick)' : ''}`,
    date: today(),
    mode: options.quick ? 'quick' : 'full',
    only: options.only.size < PAIRS.length ? [...options.only] : undefined,
    rounds: options.rounds,
    machine: machineInfo(bench),
    data: bench.data,
    method: methodNotes(bench),
    rows,
    skipped: bench.skipped,
    notes: [...bench.notes, `The whole run took ${elapsed}.`],
  });
  process.stdout.write(`\n${terminalTable(rows)}\n\n`);
  for (const s of bench.skipped) process.stdout.write(`skipped ${s.pair}: ${s.reason}\n`);
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
}

function methodNotes(bench: Bench): string[] {
  return [
    `Each pair runs one untimed warm-up of every side, then ${bench.options.rounds} round(s) alternating the sides (A B, then B A, ...); \`help\` runs ${bench.sizes.helpRuns} rounds, \`rss-2g\` one run without warm-up.`,
    `Wall time: the harness's monotonic clock from spawn to exit of \`/usr/bin/time -v <command>\`. Peak RSS: the VmHWM (the kernel's peak resident set) of the command's own process, i.e. backupkit's node process without pg_dump or mongodump, read from /proc every 50 ms; the runs table adds GNU time's "Maximum resident set size" (the largest single process of the tree: for a backup it may be the dump tool's) and the largest sampled sum over the tree. MB = 10^6 bytes.`,
    `Scratch: the storage folder (A: its output folder) and a fresh \`TMPDIR\` are sampled every 50 ms; scratch = peak total − total after exit. Up to 64 KiB counts as zero (a sidecar or a tool's 0600 config file in flight).`,
    bench.cachesDropped
      ? 'The OS page cache is dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`) before every run of pg-backup, pg-restore, pg-restore-mid, s3-backup, sqlite-backup and rss-2g; the other pairs run warm (mongo data is in memory; verify, list and help measure CPU and start-up, s3-upload the upload of a file just written).'
      : 'The OS page cache could not be dropped (not permitted here, or --no-drop-caches): every run is warm.',
    ...(damonReclaim()
      ? ['This machine runs DAMON proactive reclaim (kdamond: memory idle for about a minute is paged out), so a "warm" file may have left the page cache between pairs; warm-ups read it back.']
      : []),
    'PostgreSQL is a throwaway cluster (test/support/postgres.ts): fsync=off, full_page_writes=off, synchronous_commit=off, autovacuum off, default shared_buffers; a CHECKPOINT precedes every PostgreSQL run. Both sides connect over TCP with a password.',
    'backupkit runs as `node bin/backupkit.js -c <config> --no-progress ...` with `CI=1`, each backup into a fresh storage folder. `backupkit restore` verifies the archive\'s SHA-256 (a full read, in a worker thread while the PostgreSQL client library loads) before pg_restore starts, and hashes the entry again as it streams: both are inside its time.',
    `Load: the 1-minute load average before the timed runs ranged ${Math.min(...bench.loads, Infinity).toFixed(2)}–${Math.max(...bench.loads, 0).toFixed(2)} (median ${bench.loads.length ? median(bench.loads).toFixed(2) : '—'}) on ${os.availableParallelism()} cores; the harness itself is idle while a command runs, so a load well above the command's own processes means other work shared the machine.`,
    `CPU probe (SHA-256 of 64 MiB in the harness, before each pair): ${bench.probes.map((p) => `${p.pair} ${p.mbPerS.toFixed(0)}`).join(', ') || '—'} MB/s. Probes that differ by more than a few percent, within this run or against another run on the same machine, mean the machine's speed changed: compare ratios, not times, and only within a pair.`,
    ...(bench.s3Used
      ? [
          'S3 numbers come from the S3 test server (test/support/s3server: s3rver on loopback, its data on the same disk), run in a process of its own, not from a real service: it takes an MD5 and a SHA-256 of every byte it receives, writes each part to a file and, on completion, joins the parts into the object, so its own CPU and disk share the machine with what is timed, for both sides alike. s3-backup and s3-upload delete what each run put in the bucket, untimed, before the next run.',
        ]
      : []),
    'MongoDB numbers come from the in-memory wire-protocol test server (test/support/mongo-server), run in a process of its own, not from a real mongod: they measure backupkit\'s overhead on top of mongodump and the Node driver against a server that answers from memory.',
    '`sqlite3 .backup` writes an uncompressed copy; backupkit deflates the file at level 6 by default, so the level-0 row shows the cost of the streaming itself.',
  ];
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
