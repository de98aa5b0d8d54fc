/** history [targets...]: past runs, newest first. */
import type { Command } from 'commander';
import { formatDuration } from '../core/duration.js';
import { formatTable } from '../core/format.js';
import type { RunAction } from './context.js';
import { positiveInt } from './parse.js';

export function registerHistory(program: Command, run: RunAction): void {
  program
    .command('history')
    .description('past runs of backup, restore, verify, clean, auto, copy and delete, and runs the daemon skipped, newest first')
    .argument('[targets...]', 'only these targets')
    .option('--failed', 'only runs that failed')
    .option('--limit <n>', 'show at most n runs', positiveInt)
    .action((targets: string[], flags: { failed?: boolean; limit?: number }, command: Command) =>
      run(command, async (ctx) => {
        const { readHistory } = await import('../app/history.js');
        const runs = await readHistory(ctx.deps, targets, { failed: Boolean(flags.failed), limit: flags.limit });
        ctx.print({ runs }, () =>
          runs.length === 0
            ? 'no runs recorded'
            : formatTable(
                ['TIME', 'COMMAND', 'TARGET', 'ID', 'OK', 'DURATION', 'ERROR'],
                runs.map((r) => [r.time.replace(/\.\d+Z$/, 'Z'), r.command, r.target ?? '-', r.id ?? '-', r.ok ? 'yes' : 'NO', formatDuration(r.durationMs), (r.error ?? '').split('\n')[0]!]),
              ),
        );
        return 0;
      }),
    );
}
