/** delete <ref...>: remove single backups, after one confirmation (or --yes). */
import type { Command } from 'commander';
import { formatBytes } from '../core/format.js';
import type { RunAction } from './context.js';
import { failureExitCode } from './exit.js';
import { terminalConfirmDelete } from './prompt.js';

export function registerDelete(program: Command, run: RunAction): void {
  program
    .command('delete')
    .description('delete single backups (archive, then sidecar) from --storage or every storage holding them')
    .argument('<refs...>', 'backup ids, or "latest" with --target')
    .option('--target <name>', 'the target, for "latest"')
    .option('--force', "also delete a target's newest good backup")
    .action((refs: string[], flags: { target?: string; force?: boolean }, command: Command) =>
      run(command, async (ctx) => {
        const { deleteBackups } = await import('../app/delete.js');
        if (flags.target) (await import('../app/deps.js')).getTarget(ctx.deps, flags.target);
        const result = await deleteBackups(ctx.deps, refs, {
          target: flags.target,
          yes: Boolean(ctx.globals.yes),
          force: Boolean(flags.force),
          interactive: Boolean(ctx.io.stdin.isTTY),
          confirm: terminalConfirmDelete(ctx.io.stdin, ctx.io.stderr, ctx.deps.now),
        });
        const { failures, ...json } = result;
        ctx.print(json, () =>
          [
            ...result.deleted.map((d) => `✔ deleted ${d.id} from ${d.storage}  ${formatBytes(d.bytes)}`),
            ...failures.map((f) => `✖ ${f.id} (${f.storage}): ${f.error}`),
            `${formatBytes(result.freedBytes)} freed`,
          ].join('\n'),
        );
        return failureExitCode(failures);
      }),
    );
}
