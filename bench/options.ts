/** The harness's command line and the data sizes it selects. */
import { parseArgs } from 'node:util';

export const PAIRS = ['pg-backup', 'pg-restore', 'pg-restore-mid', 'age-backup', 'age-restore', 'age-encrypt', 's3-backup', 's3-upload', 'sqlite-backup', 'mongo-backup', 'verify-pg', 'verify-sqlite', 'verify-sqlite0', 'list', 'help', 'rss-2g', 'incremental'] as const;
export type PairId = (typeof PAIRS)[number];

export interface Options {
  quick: boolean;
  rounds: number;
  only: Set<PairId>;
  out: string | undefined;
  keep: boolean;
  dropCaches: boolean;
}

export function usage(): string {
  return [
    'usage: npm run bench -- [--quick] [--rounds N] [--only pair,...] [--out file] [--keep] [--no-drop-caches]',
    `pairs: ${PAIRS.join(', ')} (a prefix selects several: pg, s3, verify, ...)`,
  ].join('\n');
}

export function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      only: { type: 'string' },
      out: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'no-drop-caches': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${usage()}\n`);
    process.exit(0);
  }
  const rounds = values.rounds === undefined ? (values.quick ? 1 : 3) : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new UsageError(`--rounds: expected a positive integer, got ${values.rounds}`);
  let only = new Set<PairId>(PAIRS);
  if (values.only !== undefined) {
    only = new Set();
    for (const selector of values.only.split(',').map((s) => s.trim()).filter(Boolean)) {
      const matched = PAIRS.filter((id) => id === selector || id.startsWith(`${selector}-`));
      if (matched.length === 0) throw new UsageError(`--only: unknown pair ${selector}`);
      for (const id of matched) only.add(id);
    }
  }
  return {
    quick: values.quick ?? false,
    rounds,
    only,
    out: values.out,
    keep: values.keep ?? false,
    dropCaches: !values['no-drop-caches'],
  };
}

class UsageError extends Error {}

export interface Sizes {
  pgScale: number;
  pgDocs: number;
  /** pg-restore-mid's database. */
  pgMidScale: number;
  pgMidDocs: number;
  sqliteBytes: number;
  mongoDocs: number;
  listCount: number;
  bigSqliteBytes: number;
  helpRuns: number;
  /** The incremental pair's tree. */
  treeFiles: number;
  treeBytes: number;
}

export const FULL: Sizes = {
  pgScale: 70,
  pgDocs: 300_000,
  pgMidScale: 20,
  pgMidDocs: 70_000,
  sqliteBytes: 500 * 2 ** 20,
  mongoDocs: 200_000,
  listCount: 10_000,
  bigSqliteBytes: 2.05 * 2 ** 30,
  helpRuns: 10,
  treeFiles: 20_000,
  treeBytes: 2e9,
};
export const QUICK: Sizes = {
  pgScale: 1,
  pgDocs: 2_000,
  pgMidScale: 1,
  pgMidDocs: 1_000,
  sqliteBytes: 5 * 2 ** 20,
  mongoDocs: 2_000,
  listCount: 2_000,
  bigSqliteBytes: 16 * 2 ** 20,
  helpRuns: 3,
  treeFiles: 2_000,
  treeBytes: 6e6,
};
