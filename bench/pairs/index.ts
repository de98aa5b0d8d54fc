/** Every pair by its id, and the run of the selected ones in the order of PAIRS. */
import { type Bench, log } from '../bench.js';
import type { PairId } from '../options.js';
import type { Row } from '../report.js';
import { pairAgeBackup, pairAgeEncrypt, pairAgeRestore } from './age.js';
import { pairHelp } from './help.js';
import { pairIncremental } from './incremental.js';
import { pairList } from './list.js';
import { pairMongoBackup } from './mongo.js';
import { pairPgBackup, pairPgRestore, pairPgRestoreMid } from './pg.js';
import { pairRss2g } from './rss-2g.js';
import { pairS3Backup, pairS3Upload } from './s3.js';
import { pairSqliteBackup } from './sqlite.js';
import { pairVerify } from './verify.js';

const runners: Record<PairId, (bench: Bench) => Promise<Row[]>> = {
  'pg-backup': pairPgBackup,
  'pg-restore': pairPgRestore,
  'pg-restore-mid': pairPgRestoreMid,
  'age-backup': pairAgeBackup,
  'age-restore': pairAgeRestore,
  'age-encrypt': pairAgeEncrypt,
  's3-backup': pairS3Backup,
  's3-upload': pairS3Upload,
  'sqlite-backup': pairSqliteBackup,
  'mongo-backup': pairMongoBackup,
  'verify-pg': (bench) => pairVerify(bench, 'pg'),
  'verify-sqlite': (bench) => pairVerify(bench, 'sqlite'),
  'verify-sqlite0': (bench) => pairVerify(bench, 'sqlite0'),
  list: pairList,
  help: pairHelp,
  'rss-2g': pairRss2g,
  incremental: pairIncremental,
};

export async function runPairs(bench: Bench, selected: PairId[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [index, id] of selected.entries()) {
    log(`=== ${id}`);
    rows.push(...(await runners[id](bench)));
    // Stop the servers once no remaining pair needs them (verify-pg and s3-upload read only the archive).
    const rest = selected.slice(index + 1);
    const needsPg = (r: PairId) =>
      r === 'pg-backup' || r === 'pg-restore' || r === 'pg-restore-mid' || r === 'age-backup' || r === 'age-restore' || r === 's3-backup' || ((r === 'verify-pg' || r === 's3-upload' || r === 'age-encrypt') && !bench.pgStorage);
    if (!rest.some(needsPg)) await bench.stopPg();
    if (!rest.includes('mongo-backup')) await bench.stopMongo();
    if (!rest.some((r) => r.startsWith('s3-'))) await bench.stopS3();
  }
  return rows;
}
