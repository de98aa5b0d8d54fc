/** verify [refs...]: check archives; exit 3 if any fails. */
import type { Command } from 'commander';
import { ExitCode } from '../core/errors.js';
import type { RunAction } from './context.js';

export function registerVerify(program: Command, run: RunAction): void {
  program
    .command('verify')
    .description('check archives against their checksums (every backup when no refs are given)')
    .argument('[refs...]', 'backup ids, "latest" (with --target), or archive paths')
    .option('--target <name>', 'only this target\'s backups')
    .option('--deep', 'also test-restore into a scratch database (not available yet)')
    .action((refs: string[], flags: { target?: string; deep?: boolean }, command: Command) =>
      run(command, async (ctx) => {
        if (flags.deep) {
          const { UsageError } = await import('../core/errors.js');
          throw new UsageError('--deep is not available yet', { hint: 'Run verify without --deep; it checks every checksum.' });
        }
        if (flags.target) (await import('../app/deps.js')).getTarget(ctx.deps, flags.target);
        const { verifyBackups } = await import('../app/verify.js');
        const { outcomes, unlisted } = await verifyBackups(ctx.deps, refs, { target: flags.target });
        const results = outcomes.map(({ code: _code, ...result }) => result);
        ctx.print({ results }, () =>
          results.length === 0
            ? `no backups to verify in ${ctx.deps.storages.describe()}`
            : results.map((r) => `${r.ok ? '✔' : '✖'} ${r.id}${r.storage && ctx.deps.storages.all.length > 1 ? ` (${r.storage})` : ''}  ${r.ok ? `ok (${r.checks.join(', ')})` : r.error}`).join('\n'),
        );
        // Keys that do not fit (exit 2) only when nothing is damaged: a damaged archive comes first.
        const codes = new Set(outcomes.filter((o) => !o.ok).map((o) => o.code));
        for (const failure of unlisted) ctx.log.error({ storage: failure.storage }, `storage ${failure.storage} could not be listed, so its backups were not verified: ${failure.error}`);
        if (unlisted.length > 0 && codes.size === 0) return ExitCode.failed;
        return codes.size === 0 ? ExitCode.ok : codes.has(ExitCode.verification) ? ExitCode.verification : ExitCode.usage;
      }),
    );
}
