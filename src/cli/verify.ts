/** verify [refs...]: check archives (--deep: and test-restore them); exit 3 if any fails. */
import type { Command } from 'commander';
import { ExitCode } from '../core/errors.js';
import type { RunAction } from './context.js';

export function registerVerify(program: Command, run: RunAction): void {
  program
    .command('verify')
    .description('check archives against their checksums (every backup when no refs are given)')
    .argument('[refs...]', 'backup ids, "latest" (with --target), or archive paths')
    .option('--target <name>', 'only this target\'s backups')
    .option('--deep', 'also restore each backup into a scratch database on its server and compare every count')
    .action((refs: string[], flags: { target?: string; deep?: boolean }, command: Command) =>
      run(command, async (ctx) => {
        if (flags.target) (await import('../app/deps.js')).getTarget(ctx.deps, flags.target);
        const { verifyBackups } = await import('../app/verify.js');
        const { outcomes, unlisted } = await verifyBackups(ctx.deps, refs, { target: flags.target, deep: flags.deep });
        const results = outcomes.map(({ code: _code, ...result }) => result);
        const many = ctx.deps.storages.all.length > 1;
        ctx.print({ results }, () =>
          results.length === 0
            ? `no backups to verify in ${ctx.deps.storages.describe()}`
            : results
                .map((r) => {
                  const head = `${r.ok ? '✔' : '✖'} ${r.id}${r.storage && many ? ` (${r.storage})` : ''}  `;
                  if (!r.ok) return head + r.error;
                  return `${head}ok (${r.checks.join(', ')})${r.skipped ? `; test restore skipped: ${r.skipped}` : ''}`;
                })
                .join('\n'),
        );
        // A damaged archive or a count mismatch (3) comes first, then a failed operation (1), then
        // keys that do not fit (2).
        const codes = new Set(outcomes.filter((o) => !o.ok).map((o) => o.code));
        for (const failure of unlisted) ctx.log.error({ storage: failure.storage }, `storage ${failure.storage} could not be listed, so its backups were not verified: ${failure.error}`);
        if (codes.has(ExitCode.verification)) return ExitCode.verification;
        if (codes.has(ExitCode.failed)) return ExitCode.failed;
        if (codes.has(ExitCode.usage)) return ExitCode.usage;
        return codes.size > 0 || unlisted.length > 0 ? ExitCode.failed : ExitCode.ok;
      }),
    );
}
