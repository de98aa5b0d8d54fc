/** backup [targets...]: one archive per target. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { formatBytes } from '../core/format.js';
import { formatDuration } from '../core/duration.js';
import type { Part } from '../core/manifest.js';
import type { RunAction } from './context.js';
import { failureExitCode } from './exit.js';
import { collect } from './parse.js';

interface BackupFlags {
  only?: 'db' | 'files';
  tag: string[];
  note?: string;
}

export function registerBackup(program: Command, run: RunAction): void {
  program
    .command('backup')
    .description('back up targets (all of them when none are named)')
    .argument('[targets...]', 'target names from the config')
    .addOption(new Option('--only <part>', 'back up only the database or only the files').choices(['db', 'files']))
    .option('--tag <tag>', 'tag the backup (repeatable)', collect, [])
    .option('--note <text>', 'a note stored in the manifest')
    .action((targets: string[], flags: BackupFlags, command: Command) =>
      run(command, async (ctx) => {
        const { backupTargets } = await import('../app/backup.js');
        const parts: Part[] = flags.only ? [flags.only] : ['db', 'files'];
        const result = await backupTargets(ctx.deps, targets, { parts, tags: flags.tag, note: flags.note ?? null });
        ctx.print({ backups: result.backups, failures: result.failures.map(({ target, error }) => ({ target, error })) }, () =>
          [
            ...result.backups.map(
              (b) =>
                `✔ ${b.id}  ${b.units} unit(s), ${b.files} file(s)  ${formatBytes(b.size)}  in ${formatDuration(b.durationMs)}  ${ctx.deps.storage.archivePath(b.id)}`,
            ),
            ...result.failures.map((f) => `✖ ${f.target}: ${f.error}`),
          ].join('\n'),
        );
        return failureExitCode(result.failures);
      }),
    );
}
