/**
 * incremental: a tree of 20,000 files, 2 GB [2,000 files, 6 MB], half text and half random bytes,
 * with 1% of its files rewritten since its full backup.
 *   A  `backupkit backup --full` of the changed tree, each run into a fresh storage folder
 *   B  `backupkit backup` of the same tree into the storage that holds the full backup of the tree
 *      before the change: a differential backup (the one it wrote is removed, untimed, after
 *      each run, so every run plans against the same storage)
 *   A' `rsync -a tree/ copy/`, the copy holding the tree before the change (put back, untimed,
 *      after each run); skipped, saying so, when rsync is not installed
 * Targets: B within 10% of A's time and 2% of A's archive size; the rsync row is for reference.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { type Bench, log } from '../bench.js';
import { buildTinySqlite, buildTree, changeTree } from '../data.js';
import { measure } from '../measure.js';
import { type Check, type Row, formatBytes } from '../report.js';
import { type Contender, runPair, sideOf } from '../rounds.js';
import { checks, row } from '../targets.js';

const TIME_MAX = 0.1;
const SIZE_MAX = 0.02;
const STEP = 100; // every 100th file: 1%

interface DiffSidecar {
  base?: string;
  entries: { path: string; base?: string }[];
}

export async function pairIncremental(bench: Bench): Promise<Row[]> {
  const root = bench.fresh('tree');
  const dir = path.join(root, 'tree');
  log(`incremental: building a tree of ${bench.sizes.treeFiles.toLocaleString('en')} files, ${formatBytes(bench.sizes.treeBytes)}`);
  const tree = buildTree(dir, bench.sizes.treeFiles, bench.sizes.treeBytes, log);
  // Every target has a database; `--only files` never reads this one.
  const db = path.join(bench.fresh('tree-db'), 'unused.sqlite');
  buildTinySqlite(db);
  const config = bench.writeConfig('incremental', { tree: { driver: 'sqlite', path: db, files: [dir], incremental: { fullEvery: '30d' } } });

  // The full backup of the tree as it was, and (for rsync) a copy of it; then 1% of it changes.
  const base = bench.fresh('storage-tree-base');
  log('incremental: the full backup of the tree before the change (untimed)');
  await measure(bench.backupkit(config, base, ['backup', 'tree', '--only', 'files']));
  const rsync = rsyncVersion();
  const copy = path.join(root, 'copy');
  if (rsync) cpSync(dir, copy, { recursive: true, preserveTimestamps: true });
  const before = path.join(root, 'before');
  const changed = changeTree(tree, STEP, before, new Date());
  bench.data.push(['incremental tree', `${tree.files.length.toLocaleString('en')} files, ${formatBytes(tree.bytes)} (half text, half random bytes), ${changed.length} rewritten (1%)`]);

  const full: Contender = {
    label: 'backupkit backup --full',
    command: 'backupkit backup tree --only files --full',
    async run() {
      const storage = bench.fresh('storage-tree');
      const m = await measure(bench.backupkit(config, storage, ['--json', 'backup', 'tree', '--only', 'files', '--full'], { captureStdout: true }));
      const record = (JSON.parse(m.stdout) as { backups: { size: number }[] }).backups[0]!;
      rmSync(storage, { recursive: true, force: true });
      return { m, outputBytes: record.size };
    },
  };
  const diff: Contender = {
    label: 'backupkit backup (differential)',
    command: 'backupkit backup tree --only files',
    async run() {
      const m = await measure(bench.backupkit(config, base, ['--json', 'backup', 'tree', '--only', 'files'], { captureStdout: true }));
      const record = (JSON.parse(m.stdout) as { backups: { id: string; size: number; file: string }[] }).backups[0]!;
      checkDifferential(path.join(base, `${record.id}.json`), changed);
      rmSync(path.join(base, record.file));
      rmSync(path.join(base, `${record.id}.json`));
      return { m, outputBytes: record.size };
    },
  };
  const contenders = [full, diff];
  let rsyncSide: Contender | undefined;
  if (rsync) {
    rsyncSide = {
      label: 'rsync -a',
      command: 'rsync -a tree/ copy/ (the copy one change behind)',
      async run() {
        const m = await measure({ command: 'rsync', args: ['-a', `${dir}/`, `${copy}/`], watch: [copy] });
        for (const rel of changed) {
          if (!readFileSync(path.join(copy, rel)).equals(readFileSync(path.join(dir, rel)))) throw new Error(`rsync left ${rel} unchanged`);
        }
        cpSync(before, copy, { recursive: true, preserveTimestamps: true });
        return { m, outputBytes: null };
      },
    };
    contenders.push(rsyncSide);
  } else {
    const reason = 'rsync is not installed';
    log(`incremental (rsync row): skipped: ${reason}`);
    bench.skipped.push({ pair: 'incremental (rsync)', reason });
  }
  const samples = await runPair(bench, 'incremental', contenders, { rounds: bench.options.rounds, cold: true });
  const sa = sideOf(full, samples.get(full)!);
  const sb = sideOf(diff, samples.get(diff)!);
  const sizeRatio = (sb.outputBytes ?? 0) / (sa.outputBytes ?? 1);
  const size: Check = { label: `size ≤ ${SIZE_MAX * 100}% of A's`, ok: sizeRatio <= SIZE_MAX, actual: `${(sizeRatio * 100).toFixed(2)}%` };
  bench.notes.push(
    `incremental: the full backup's archive is ${formatBytes(sa.outputBytes ?? 0)}, the differential one's ${formatBytes(sb.outputBytes ?? 0)} (${(sizeRatio * 100).toFixed(2)}%), ` +
      `of which the manifest listing all ${tree.files.length.toLocaleString('en')} files is a part; ${rsync ? `${rsync}.` : 'rsync is not installed.'}`,
  );
  const rows = [
    row('incremental', sa, sb, `B/A ≤ ${TIME_MAX.toFixed(2)}, size ≤ ${SIZE_MAX * 100}% of A's (${(sizeRatio * 100).toFixed(2)}%), RSS ≤ 150 MB, scratch 0`, (r) => [
      checks.ratio(r, TIME_MAX),
      size,
      checks.rss(sb),
      checks.scratch(sb),
    ]),
  ];
  if (rsyncSide) rows.push(row('incremental', sideOf(rsyncSide, samples.get(rsyncSide)!), sb, 'for reference (rsync copies the changed files, uncompressed; no target)', () => []));
  rmSync(root, { recursive: true, force: true });
  rmSync(base, { recursive: true, force: true });
  return rows;
}

/** The differential backup lists every file and holds exactly the changed ones. */
function checkDifferential(sidecarFile: string, changed: string[]): void {
  const sidecar = JSON.parse(readFileSync(sidecarFile, 'utf8')) as DiffSidecar;
  const held = sidecar.entries.filter((e) => e.path.startsWith('files/') && e.base === undefined).map((e) => e.path.replace(/^files\/0\//, '')).sort();
  if (!sidecar.base || JSON.stringify(held) !== JSON.stringify([...changed].sort())) {
    throw new Error(`the differential backup holds ${held.length} file(s) (base ${sidecar.base ?? 'none'}), expected the ${changed.length} changed ones`);
  }
}

function rsyncVersion(): string | undefined {
  try {
    return execFileSync('rsync', ['--version'], { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return undefined;
  }
}
