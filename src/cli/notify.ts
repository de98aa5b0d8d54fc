/** notify test [targets...]: a test message through every configured notification channel. */
import type { Command } from 'commander';
import { ExitCode } from '../core/errors.js';
import type { RunAction } from './context.js';

export function registerNotify(program: Command, run: RunAction): void {
  const notify = program.command('notify').description('notifications after runs (email, webhook, ping)');
  notify
    .command('test')
    .description("send a test message through every configured channel (defaults' and the targets')")
    .argument('[targets...]', "these targets' channels (default: every target's)")
    .action((targets: string[], _flags: unknown, command: Command) =>
      run(command, async (ctx) => {
        const { testNotifications } = await import('../app/notifytest.js');
        const results = await testNotifications(ctx.deps, targets);
        ctx.print({ results: results.map(({ channel, at, ok, error }) => ({ channel, at, ok, error })) }, () =>
          results.map((r) => `${r.ok ? '✔' : '✖'} ${r.channel.padEnd(7)}  ${r.at}  ${r.url}${r.ok ? '  sent' : `: ${r.error}`}`).join('\n'),
        );
        return results.every((r) => r.ok) ? ExitCode.ok : ExitCode.failed;
      }),
    );
}
