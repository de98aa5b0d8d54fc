/** auto [targets...]: restore-if-empty, for container start-up. */
import type { Command } from 'commander';
import type { RunAction } from './context.js';
import { failureExitCode } from './exit.js';

export function registerAuto(program: Command, run: RunAction): void {
  program
    .command('auto')
    .description('restore the newest good backup into each target whose database is empty')
    .argument('[targets...]', 'target names (all when none are named)')
    .option('--require-backup', 'fail (exit 1) when a database is empty and there is no backup')
    .addHelpText('after', '\nFor container start-up: backupkit auto && exec node server.js')
    .action((targets: string[], flags: { requireBackup?: boolean }, command: Command) =>
      run(command, async (ctx) => {
        const { autoRestore } = await import('../app/auto.js');
        const outcome = await autoRestore(ctx.deps, targets, { requireBackup: Boolean(flags.requireBackup) });
        ctx.print({ results: outcome.results }, () =>
          [
            ...outcome.results.map((r) =>
              r.action === 'restored' ? `✔ ${r.target}: was empty; restored ${r.id}` : r.action === 'not-empty' ? `· ${r.target}: not empty; nothing to do` : `! ${r.target}: empty, and no backup to restore`,
            ),
            ...outcome.failures.filter((f) => !outcome.results.some((r) => r.target === f.target)).map((f) => `✖ ${f.target}: ${f.error}`),
          ].join('\n'),
        );
        return failureExitCode(outcome.failures);
      }),
    );
}
