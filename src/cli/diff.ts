/** diff <refA> <refB>: units and files that changed between two backups. */
import type { Command } from 'commander';
import { formatBytes } from '../core/format.js';
import type { RunAction } from './context.js';

const count = (n: number | null) => (n === null ? '?' : String(n));

export function registerDiff(program: Command, run: RunAction): void {
  program
    .command('diff')
    .description('what changed between two backups: units added, removed and recounted; files added, removed and changed')
    .argument('<refA>', 'the earlier backup: an id, "latest" (with --target), or an archive path')
    .argument('<refB>', 'the later backup')
    .option('--target <name>', 'the target, for "latest"')
    .action((refA: string, refB: string, flags: { target?: string }, command: Command) =>
      run(command, async (ctx) => {
        if (flags.target) (await import('../app/deps.js')).getTarget(ctx.deps, flags.target);
        const { diffBackups } = await import('../app/diff.js');
        const d = await diffBackups(ctx.deps, refA, refB, { target: flags.target });
        ctx.print(d, () => {
          const units = [
            ...d.units.added.map((u) => `  + ${u.name} (${count(u.count)})`),
            ...d.units.removed.map((u) => `  - ${u.name} (${count(u.count)})`),
            ...d.units.changed.map((u) => {
              const delta = u.from !== null && u.to !== null ? ` (${u.to >= u.from ? '+' : ''}${u.to - u.from})` : '';
              return `  ~ ${u.name}  ${count(u.from)} → ${count(u.to)}${delta}`;
            }),
          ];
          const files = [
            ...d.files.added.map((f) => `  + ${f.path} (${formatBytes(f.size)})`),
            ...d.files.removed.map((f) => `  - ${f.path} (${formatBytes(f.size)})`),
            ...d.files.changed.map((f) => `  ~ ${f.path}  ${formatBytes(f.from.size)} → ${formatBytes(f.to.size)}${f.from.size === f.to.size ? ' (content)' : ''}`),
          ];
          return [
            `${d.from} → ${d.to}`,
            units.length > 0 ? `units:\n${units.join('\n')}` : 'units: no changes',
            files.length > 0 ? `files:\n${files.join('\n')}` : 'files: no changes',
          ].join('\n');
        });
        return 0;
      }),
    );
}
