/** clean [targets...]: apply retention; --dry-run shows what would be kept (and why) and deleted. */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { parseDuration } from '../core/duration.js';
import { formatBytes } from '../core/format.js';
import type { RetentionPolicy } from '../core/retention.js';
import type { RunAction } from './context.js';
import { failureExitCode } from './exit.js';
import { nonNegativeInt } from './parse.js';

interface CleanFlags {
  dryRun?: boolean;
  keepLast?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  keepWithin?: number;
  retentionDays?: number;
}

function duration(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined) throw new InvalidArgumentError('expected a duration such as 90s, 5m, 12h, 30d, 8w, 1y');
  return ms;
}

export function registerClean(program: Command, run: RunAction): void {
  program
    .command('clean')
    .description('delete backups that no retention rule keeps')
    .argument('[targets...]', 'target names (all when none are named)')
    .option('--dry-run', 'show what would be kept and deleted; delete nothing')
    .option('--keep-last <n>', 'keep the n newest backups', nonNegativeInt)
    .option('--keep-daily <n>', 'keep the newest backup of each of the last n days with backups', nonNegativeInt)
    .option('--keep-weekly <n>', 'the same for ISO weeks', nonNegativeInt)
    .option('--keep-monthly <n>', 'the same for months', nonNegativeInt)
    .option('--keep-yearly <n>', 'the same for years', nonNegativeInt)
    .option('--keep-within <duration>', 'keep every backup newer than this (e.g. 30d)', duration)
    .option('--retention-days <n>', 'the same as --keep-within <n>d', nonNegativeInt)
    .addHelpText('after', '\nRetention flags replace the config\'s rules for this run. A target with no rule is never cleaned.')
    .action((targets: string[], flags: CleanFlags, command: Command) =>
      run(command, async (ctx) => {
        const { cleanTargets } = await import('../app/clean.js');
        const rules: RetentionPolicy = {
          keepLast: flags.keepLast,
          keepDaily: flags.keepDaily,
          keepWeekly: flags.keepWeekly,
          keepMonthly: flags.keepMonthly,
          keepYearly: flags.keepYearly,
          keepWithin: flags.keepWithin ?? (flags.retentionDays === undefined ? undefined : flags.retentionDays * 86_400_000),
        };
        const result = await cleanTargets(ctx.deps, targets, { dryRun: Boolean(flags.dryRun), rules });
        const { failures, ...rest } = result;
        const json = { ...rest, failures: failures.map(({ code: _code, ...failure }) => failure) };
        const at = (storage: string) => (ctx.deps.storages.all.length > 1 ? ` (${storage})` : '');
        ctx.print(json, () => {
          const verb = result.dryRun ? 'to delete' : 'deleted';
          const lines = [
            ...result.kept.map((k) => `keep    ${k.id}${at(k.storage)}  ${k.reasons.join(', ')}`),
            ...result.deleted.map((d) => `${result.dryRun ? 'delete' : 'deleted'} ${d.id}${at(d.storage)}  ${formatBytes(d.bytes)}`),
            ...failures.map((f) => `✖ ${f.target}${f.storage ? ` (${f.storage})` : ''}: ${f.error}`),
            `${result.kept.length} kept, ${result.deleted.length} ${verb}, ${formatBytes(result.freedBytes)} ${result.dryRun ? 'would be freed' : 'freed'}${result.dryRun ? ' (--dry-run: nothing was deleted)' : ''}`,
          ];
          return lines.join('\n');
        });
        return failureExitCode(failures);
      }),
    );
}
