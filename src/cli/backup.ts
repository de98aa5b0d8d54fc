/** backup [targets...]: one archive per target. */
import path from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { formatBytes } from '../core/format.js';
import { formatDuration } from '../core/duration.js';
import type { BackupRecord, Part } from '../core/manifest.js';
import type { CliContext, RunAction } from './context.js';
import { failureExitCode } from './exit.js';
import { collect } from './parse.js';

interface BackupFlags {
  only?: 'db' | 'files';
  tag: string[];
  note?: string;
  full?: boolean;
}

/** The archive's path for a single local storage, else the storages' names. */
function where(ctx: CliContext, record: BackupRecord): string {
  const storages = record.storages.map((name) => ctx.deps.storages.get(name));
  if (storages.length === 1 && storages[0]!.type === 'local') return path.join(storages[0]!.location, record.file);
  return `in ${storages.map((s) => (s.type === 'local' ? `${s.name} (${path.join(s.location, record.file)})` : `${s.name} (${s.location}${record.file})`)).join(', ')}`;
}

export function registerBackup(program: Command, run: RunAction): void {
  program
    .command('backup')
    .description('back up targets (all of them when none are named)')
    .argument('[targets...]', 'target names from the config')
    .addOption(new Option('--only <part>', 'back up only the database or only the files').choices(['db', 'files']))
    .option('--tag <tag>', 'tag the backup (repeatable)', collect, [])
    .option('--note <text>', 'a note stored in the manifest')
    .option('--full', 'a full backup of the files of incremental targets, not a differential one')
    .action((targets: string[], flags: BackupFlags, command: Command) =>
      run(command, async (ctx) => {
        const { backupTargets } = await import('../app/backup.js');
        const parts: Part[] = flags.only ? [flags.only] : ['db', 'files'];
        const result = await backupTargets(ctx.deps, targets, { parts, tags: flags.tag, note: flags.note ?? null, full: Boolean(flags.full) });
        ctx.print({ backups: result.backups, failures: result.failures.map(({ target, error }) => ({ target, error })) }, () =>
          [
            ...result.backups.map(
              (b) => `✔ ${b.id}  ${b.units} unit(s), ${b.files} file(s)  ${formatBytes(b.size)}  in ${formatDuration(b.durationMs)}  ${where(ctx, b)}`,
            ),
            ...result.failures.map((f) => `✖ ${f.target}: ${f.error}`),
          ].join('\n'),
        );
        return failureExitCode(result.failures);
      }),
    );
}
