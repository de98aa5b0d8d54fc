/** list: `backupkit list` and `list --json` over a storage of many copies of one real backup. */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { type Bench, log } from '../bench.js';
import { buildListStorage, buildTinySqlite } from '../data.js';
import { measure } from '../measure.js';
import { type Row, formatBytes } from '../report.js';
import { type Contender, runPair, sideOf } from '../rounds.js';
import { LIST_MAX_MS, checks, row } from '../targets.js';
import { jsonOut } from './backupkit.js';

export async function pairList(bench: Bench): Promise<Row[]> {
  // One real backup of a tiny SQLite database is the template for the others.
  const tinyDir = bench.fresh('list-tiny');
  const tinyFile = path.join(tinyDir, 'tiny.sqlite');
  buildTinySqlite(tinyFile);
  const targets = Object.fromEntries(['tiny', 'app', 'crm', 'shop', 'logs'].map((t) => [t, { driver: 'sqlite', path: tinyFile }]));
  const config = bench.writeConfig('list', targets);
  const template = bench.fresh('list-template');
  await measure(bench.backupkit(config, template, ['backup', 'tiny']));
  const storage = bench.fresh('list-storage');
  log(`list: writing ${bench.sizes.listCount.toLocaleString('en')} backups`);
  buildListStorage(template, storage, bench.sizes.listCount, new Date());
  bench.data.push(['list storage', `${bench.sizes.listCount.toLocaleString('en')} backups (sidecar + ${formatBytes(statSync(path.join(storage, readFirstZip(storage))).size)} archive each) over 4 targets`]);
  const listContender = (json: boolean): Contender => ({
    label: json ? 'backupkit list --json' : 'backupkit list',
    command: json ? 'backupkit --json list' : 'backupkit list',
    async run() {
      const m = await measure(bench.backupkit(config, storage, json ? ['--json', 'list'] : ['list'], { captureStdout: json, watchStorage: false }));
      if (json) {
        const count = jsonOut<{ stats: { count: number } }>(m).stats.count;
        if (count !== bench.sizes.listCount) throw new Error(`list --json counted ${count} backups, expected ${bench.sizes.listCount}`);
        m.stdout = '';
      }
      return { m, outputBytes: null };
    },
  });
  const plain = listContender(false);
  const json = listContender(true);
  const samples = await runPair(bench, 'list', [plain, json], { rounds: bench.options.rounds, cold: false });
  const target = `< 1 s over ${bench.sizes.listCount.toLocaleString('en')} backups`;
  return [plain, json].map((c) => {
    const side = sideOf(c, samples.get(c)!);
    return row('list', null, side, target, () => [checks.under(side, LIST_MAX_MS)]);
  });
}

function readFirstZip(dir: string): string {
  const name = readdirSync(dir).find((n) => n.endsWith('.zip'));
  if (!name) throw new Error(`no archive in ${dir}`);
  return name;
}
