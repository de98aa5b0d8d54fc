/** list [targets...]: backups newest first, with a stats footer. */
import type { Command } from 'commander';
import { formatAge, formatBytes, formatTable } from '../core/format.js';
import { ExitCode } from '../core/errors.js';
import type { RunAction } from './context.js';
import { positiveInt } from './parse.js';

export function registerList(program: Command, run: RunAction): void {
  program
    .command('list')
    .description('list backups, newest first')
    .argument('[targets...]', 'only these targets')
    .option('--limit <n>', 'show at most n backups', positiveInt)
    .action((targets: string[], flags: { limit?: number }, command: Command) =>
      run(command, async (ctx) => {
        const { listBackups } = await import('../app/list.js');
        const result = await listBackups(ctx.deps, targets, { limit: flags.limit });
        const now = ctx.deps.now();
        const { failures, ...json } = result;
        const several = ctx.deps.storages.all.length > 1;
        ctx.print(json, () => {
          const failed = failures.map((f) => `✖ storage ${f.storage}: ${f.error}`).join('\n');
          if (result.stats.count === 0) return [`no backups in ${ctx.deps.storages.describe()}`, failed].filter(Boolean).join('\n');
          const table = formatTable(
            ['ID', 'CREATED', 'AGE', 'SIZE', 'UNITS', 'FILES', 'TAGS', ...(several ? ['STORAGES'] : [])],
            result.backups.map((b) => [
              b.id,
              b.createdAt.replace('.000Z', 'Z'),
              formatAge(new Date(b.createdAt), now),
              formatBytes(b.size),
              String(b.units),
              String(b.files),
              b.tags.join(','),
              ...(several ? [b.storages.join(',')] : []),
            ]),
          );
          const { count, totalBytes, oldest, newest } = result.stats;
          const shown = result.backups.length < count ? ` (showing ${result.backups.length})` : '';
          return `${table}\n\n${count} backup(s)${shown}, ${formatBytes(totalBytes)} in total; oldest ${oldest}, newest ${newest}${failed ? `\n${failed}` : ''}`;
        });
        return failures.length > 0 ? ExitCode.failed : ExitCode.ok;
      }),
    );
}
