/**
 * mongo-backup: `mongodump --archive --gzip` against `backupkit backup` with the mongodump driver and
 * with the mongo-json driver, on the in-memory test server.
 */
import { rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { type Bench, MONGO_BIN } from '../bench.js';
import { MONGO_DATABASE } from '../data.js';
import { measure } from '../measure.js';
import { type Row, formatBytes } from '../report.js';
import { type Contender, runPair, sideOf } from '../rounds.js';
import { BACKUP_TARGET, backupRow, checks, row } from '../targets.js';
import { backupContender, keeper } from './backupkit.js';

export async function pairMongoBackup(bench: Bench): Promise<Row[]> {
  const uri = await bench.ensureMongo();
  const config = bench.writeConfig('mongo', {
    mdump: { driver: 'mongodump', uri, database: MONGO_DATABASE, bin: MONGO_BIN },
    mjson: { driver: 'mongo-json', uri, database: MONGO_DATABASE },
  });
  let aDir: string | undefined;
  const a: Contender = {
    label: 'mongodump --archive --gzip',
    command: 'mongodump --uri=<uri> --db=bench --archive=<dir>/dump.archive.gz --gzip',
    async run() {
      const dir = bench.fresh('mongo-a');
      const tmp = bench.fresh('tmp');
      const file = path.join(dir, 'dump.archive.gz');
      const m = await measure({
        command: path.join(MONGO_BIN, 'mongodump'),
        args: [`--uri=${uri}`, `--db=${MONGO_DATABASE}`, `--archive=${file}`, '--gzip'],
        env: { TMPDIR: tmp },
        watch: [dir, tmp],
      });
      const outputBytes = statSync(file).size;
      if (aDir) rmSync(aDir, { recursive: true, force: true });
      aDir = dir;
      return { m, outputBytes };
    },
  };
  const b = backupContender(bench, 'backupkit backup (mongodump)', config, 'mdump', keeper(bench, null));
  const bj = backupContender(bench, 'backupkit backup (mongo-json)', config, 'mjson', keeper(bench, null));
  const samples = await runPair(bench, 'mongo-backup', [a, b, bj], { rounds: bench.options.rounds, cold: false });
  const sa = sideOf(a, samples.get(a)!);
  const sb = sideOf(b, samples.get(b)!);
  const sj = sideOf(bj, samples.get(bj)!);
  bench.data.push(['MongoDB archives', `mongodump --gzip ${formatBytes(sa.outputBytes ?? 0)}; backupkit mongodump ${formatBytes(sb.outputBytes ?? 0)}, mongo-json ${formatBytes(sj.outputBytes ?? 0)}`]);
  return [
    backupRow('mongo-backup', sa, sb, `${BACKUP_TARGET} (test server)`),
    row('mongo-backup', sa, sj, 'RSS ≤ 150 MB, scratch 0 (another format: B/A for information)', () => [checks.rss(sj), checks.scratch(sj)]),
  ];
}
