/** import <file...>: adopt backupkit archives made elsewhere into the target's storages. */
import type { Command } from 'commander';
import { ExitCode } from '../core/errors.js';
import { formatBytes } from '../core/format.js';
import type { RunAction } from './context.js';
import { failureExitCode } from './exit.js';

export function registerImport(program: Command, run: RunAction): void {
  program
    .command('import')
    .description("adopt backupkit archives made elsewhere into their target's storages, each checked in full first")
    .argument('<files...>', 'archive files (<id>.zip, or <id>.zip.age with its <id>.json beside it)')
    .option('--target <name>', "put them in this target's storages (another target or driver needs --force)")
    .option('--force', 'with --target: accept archives of another target or driver')
    .action((files: string[], flags: { target?: string; force?: boolean }, command: Command) =>
      run(command, async (ctx) => {
        const { importArchives } = await import('../app/import.js');
        if (flags.target) (await import('../app/deps.js')).getTarget(ctx.deps, flags.target);
        const result = await importArchives(ctx.deps, files, { target: flags.target, force: Boolean(flags.force) });
        const { failures, ...json } = result;
        ctx.print(json, () =>
          [
            ...result.imported.map((r) => `✔ ${r.id}  ${formatBytes(r.size)}  into ${r.storages.join(', ')}`),
            ...result.skipped.map((s) => (s.reason === 'present' ? `- ${s.id}  already in ${s.storage}` : `✖ ${s.id}  ${s.storage} already has another backup with this id; left as it is`)),
            ...failures.map((f) => `✖ ${f.file}: ${f.error}`),
            `${result.imported.length} imported${result.skipped.length ? `, ${result.skipped.length} skipped` : ''}${failures.length ? `, ${failures.length} failed` : ''}`,
          ].join('\n'),
        );
        const different = result.skipped.filter((s) => s.reason === 'different').map(() => ({ code: ExitCode.failed }));
        return failureExitCode([...failures, ...different]);
      }),
    );
}
