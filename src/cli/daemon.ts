/** daemon: run every target's schedules in the foreground until SIGTERM or SIGINT; SIGHUP reloads the config. */
import type { Command } from 'commander';
import { ExitCode } from '../core/errors.js';
import { type RunAction, buildDeps, readConfig } from './context.js';

const HELP = `
What runs when (cron expressions of 5 fields, or 6 with seconds first; times in
defaults.timezone, else the system's):
  schedule        backup of the target, then clean in each of its storages that has retention
                  rules (only when the backup succeeded)
  verifySchedule  verify of the target's backups; a test restore as well when verifyDeep is set

Runs wait in one queue and go one at a time (daemon.concurrency allows more at once). A target
never has two runs at once: its verify waits for its backup. A run that falls due while its
previous one (the same target's backup, or its verify) is still going or waiting is skipped,
logged as a warning and written to history.jsonl with ok false and "skipped: ... since ...".
A failing run does not stop the daemon or the other targets.

With daemon.listen ("127.0.0.1:9180"; port 0 picks a free port, logged at start):
  GET /healthz   200 when each target's newest good backup is younger than its maxAge, else 503
  GET /metrics   Prometheus text format (backupkit_* metrics)

Signals:
  SIGTERM, SIGINT  start nothing new, interrupt what runs (its partial files are removed), exit 0
  SIGHUP           read the config again; a bad one is refused (logged) and the old one kept`;

export function registerDaemon(program: Command, run: RunAction): void {
  program
    .command('daemon')
    .description('run the targets\' schedules in the foreground (backup, clean, verify), with /healthz and /metrics')
    .addHelpText('after', HELP)
    .action((_flags: unknown, command: Command) =>
      run(command, async (ctx) => {
        const { runDaemon } = await import('../app/daemon.js');
        await runDaemon(ctx.deps, {
          reload: async () => buildDeps(await readConfig(ctx.globals, ctx.io), ctx.globals, ctx.io, ctx.log),
          onReload: ctx.io.onReload,
        });
        // Stopped by SIGTERM or SIGINT, as a service is: that is a clean exit.
        return ExitCode.ok;
      }),
    );
}
