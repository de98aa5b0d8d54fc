/** restore <target> [ref]: put a backup back, with the contract's safety rules. */
import type { Command } from 'commander';
import { formatBytes } from '../core/format.js';
import { formatDuration } from '../core/duration.js';
import type { RunAction } from './context.js';
import { commaList } from './parse.js';
import { terminalConfirm } from './prompt.js';

interface RestoreFlags {
  only?: string[];
  into?: string;
  dryRun?: boolean;
  snapshot: boolean;
  force?: boolean;
  flush?: boolean;
  deleteExtra?: boolean;
}

export function registerRestore(program: Command, run: RunAction): void {
  program
    .command('restore')
    .description("restore a backup (default: latest) into the target's database")
    .argument('<target>', 'the target to restore')
    .argument('[ref]', 'a backup id, "latest", or a path to an archive', 'latest')
    .option('--only <units>', 'restore only these units (comma-separated, as inspect shows them)', commaList)
    .option('--into <database>', 'restore into another database (created if missing)')
    .option('--dry-run', 'check the archive and print the plan; change nothing')
    .option('--no-snapshot', 'skip the pre-restore snapshot of the current data')
    .option('--force', 'accept an archive given by path that belongs to another target')
    .option('--flush', 'empty the database before loading (django-dumpdata)')
    .option('--delete-extra', "remove files in the target's folders that the backup does not hold")
    .action((target: string, ref: string, flags: RestoreFlags, command: Command) =>
      run(command, async (ctx) => {
        const { restoreBackup } = await import('../app/restore.js');
        const result = await restoreBackup(ctx.deps, target, {
          ref,
          only: flags.only,
          into: flags.into,
          dryRun: Boolean(flags.dryRun),
          snapshot: flags.snapshot,
          yes: Boolean(ctx.globals.yes),
          force: Boolean(flags.force),
          flush: Boolean(flags.flush),
          deleteExtra: Boolean(flags.deleteExtra),
          interactive: Boolean(ctx.io.stdin.isTTY),
          confirm: terminalConfirm(ctx.io.stdin, ctx.io.stderr, ctx.deps.now),
        });
        const { plan, ...json } = result;
        ctx.print(json, () => {
          const units = result.units.map((u) => `${u.name}${u.count === null ? '' : ` (${u.count})`}`).join(', ') || '(none)';
          const where = `${plan.database}${plan.host ? ` on ${plan.host}` : ''}`;
          if (result.dryRun) {
            return [
              `plan: restore ${plan.id} (${formatBytes(plan.size)}) into ${where}`,
              `  units: ${units}`,
              ...(plan.files.length > 0 ? [`  files: ${plan.files.map((f) => f.path).join(', ')}${plan.base ? ` (unchanged ones from its base ${plan.base})` : ''}`] : []),
              `  pre-restore snapshot: ${plan.snapshot ? 'yes, unless the database is empty' : 'no (--no-snapshot)'}`,
              'archive verified; nothing was changed (--dry-run)',
            ].join('\n');
          }
          return [
            `✔ restored ${result.id} into ${where} in ${formatDuration(result.durationMs)}`,
            `  units: ${units}`,
            ...(plan.files.length > 0 ? [`  files: ${plan.files.map((f) => f.path).join(', ')}`] : []),
            result.snapshot ? `  pre-restore snapshot: ${result.snapshot}` : '  pre-restore snapshot: none',
          ].join('\n');
        });
        return 0;
      }),
    );
}
