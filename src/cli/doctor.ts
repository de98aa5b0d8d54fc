/** doctor [targets...]: each target's health as a table, or --json; exit 1 when any check fails. */
import { type Command, InvalidArgumentError } from 'commander';
import type { DoctorResult } from '../app/doctor.js';
import { parseDuration } from '../core/duration.js';
import { ExitCode } from '../core/errors.js';
import { formatTable } from '../core/format.js';
import type { RunAction } from './context.js';

export function registerDoctor(program: Command, run: RunAction): void {
  program
    .command('doctor')
    .description('check each target: config, tools, database, storages, newest backup\'s age, last verify')
    .argument('[targets...]', 'only these targets')
    .option('--timeout <duration>', 'time each check may take (default 10s)', duration)
    .action((targets: string[], flags: { timeout?: number }, command: Command) =>
      run(command, async (ctx) => {
        const { DEFAULT_CHECK_TIMEOUT_MS, runDoctor } = await import('../app/doctor.js');
        const result = await runDoctor(ctx.deps, targets, { timeoutMs: flags.timeout ?? DEFAULT_CHECK_TIMEOUT_MS });
        ctx.print(result, () => formatReport(result));
        return result.ok ? ExitCode.ok : ExitCode.failed;
      }),
    );
}

function duration(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) throw new InvalidArgumentError('expected a duration such as 10s, 2m or 30 (seconds)');
  return ms;
}

/** The table, then what to do about each failure, then one summary line. */
export function formatReport(result: DoctorResult): string {
  if (result.targets.length === 0) return 'no targets in the config';
  const rows = result.targets.flatMap((t) => t.checks.map((c) => [t.target, c.name, c.ok ? 'ok' : 'FAIL', c.detail]));
  const failed = result.targets.flatMap((t) => t.checks.filter((c) => !c.ok).map((c) => ({ target: t.target, check: c })));
  const out = [formatTable(['TARGET', 'CHECK', 'STATUS', 'DETAIL'], rows)];
  const hinted = failed.filter((f) => f.check.hint);
  if (hinted.length > 0) {
    out.push('', 'What to do:');
    for (const { target, check } of hinted) {
      const label = `  ${target} ${check.name}: `;
      const [first, ...rest] = check.hint!.split('\n');
      out.push(label + first, ...rest.map((line) => ' '.repeat(label.length) + line));
    }
  }
  const total = rows.length;
  out.push('', failed.length === 0 ? `all ${total} checks passed` : `${failed.length} of ${total} checks failed`);
  return out.join('\n');
}
