/**
 * backupkit's benchmark: each pair times a raw tool (A) against backupkit (B), alternating them,
 * and checks the targets of issue 6. See bench/README.md.
 *
 *   npm run bench                       full run; results in bench/results/<date>.md
 *   npm run bench -- --quick            small data, one round; prints the table
 *   npm run bench -- --only pg,help     some pairs (a pair's id, or its prefix: pg, verify, mongo)
 *   npm run bench -- --rounds 5 --out /tmp/bench.md
 *
 * Exit code 0 whatever the numbers (benchmarks are not tests); 1 when the harness itself broke.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Bench, REPO, log } from './bench.js';
import { CommandFailed, killRunning } from './measure.js';
import { type Options, PAIRS, parseOptions, usage } from './options.js';
import { runPairs } from './pairs/index.js';
import type { Row } from './report.js';
import { publish } from './results.js';

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n${usage()}\n`);
    return 2;
  }
  if (!existsSync(path.join(REPO, 'dist', 'main.js'))) {
    process.stderr.write('bench: dist/main.js is missing: run npm run build first\n');
    return 1;
  }
  if (!existsSync('/usr/bin/time')) {
    process.stderr.write('bench: /usr/bin/time (GNU time) is missing: apt-get install time\n');
    return 1;
  }
  const bench = new Bench(options);
  const onSignal = (signal: NodeJS.Signals) => {
    if (bench.interrupted) return;
    bench.interrupted = true;
    log(`${signal}: stopping the command under way, cleaning up`);
    killRunning();
    void bench.cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const started = Date.now();
  const selected = PAIRS.filter((id) => options.only.has(id));
  log(`${options.quick ? 'quick' : 'full'} run: ${selected.join(', ')}; work folder ${bench.work}`);
  let rows: Row[];
  try {
    rows = await runPairs(bench, selected);
  } catch (error) {
    if (bench.interrupted) return new Promise<number>(() => undefined); // the signal handler exits
    log(`the harness broke: ${error instanceof Error ? error.message : String(error)}`);
    if (error instanceof Error && error.stack && !(error instanceof CommandFailed)) log(error.stack);
    await bench.cleanup();
    return 1;
  }
  await bench.cleanup();
  publish(bench, rows, started);
  return 0;
}

process.exitCode = await main();
