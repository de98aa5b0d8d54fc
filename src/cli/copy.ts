/** copy [refs...] --from <storage> --to <storage>: copy the backups the destination lacks. */
import type { Command } from 'commander';
import { formatBytes } from '../core/format.js';
import type { RunAction } from './context.js';
import { failureExitCode } from './exit.js';

interface CopyFlags {
  from: string;
  to: string;
  target?: string;
}

export function registerCopy(program: Command, run: RunAction): void {
  program
    .command('copy')
    .description('copy backups that one storage lacks from another, checking each copy\'s size and SHA-256')
    .argument('[refs...]', 'backup ids ("latest" with --target); default: every backup in --from')
    .requiredOption('--from <storage>', 'the storage to copy from')
    .requiredOption('--to <storage>', 'the storage to copy to')
    .option('--target <name>', 'only this target\'s backups')
    .action((refs: string[], flags: CopyFlags, command: Command) =>
      run(command, async (ctx) => {
        const [{ copyBackups }, { createStorages }] = await Promise.all([import('../app/copy.js'), import('../storage/registry.js')]);
        if (flags.target) (await import('../app/deps.js')).getTarget(ctx.deps, flags.target);
        // --from and --to may name any storage of the config, whatever --storage says.
        const storages = ctx.deps.storages.narrowedTo ? await createStorages(ctx.deps.config) : ctx.deps.storages;
        const result = await copyBackups(ctx.deps, storages, { from: flags.from, to: flags.to, refs, target: flags.target });
        const { failures, ...json } = result;
        ctx.print(json, () =>
          [
            ...result.copied.map((c) => `✔ ${c.id}  ${formatBytes(c.bytes)}  ${c.from} → ${c.to}`),
            ...result.skipped.map((s) => `- ${s.id}  already in ${flags.to}`),
            ...failures.map((f) => `✖ ${f.id}: ${f.error}`),
            `${result.copied.length} copied, ${result.skipped.length} already there${failures.length ? `, ${failures.length} failed` : ''}`,
          ].join('\n'),
        );
        return failureExitCode(failures);
      }),
    );
}
