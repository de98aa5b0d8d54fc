/** inspect <ref>: one backup's manifest, units, entries and checksums. */
import type { Command } from 'commander';
import { formatBytes, formatTable } from '../core/format.js';
import type { RunAction } from './context.js';

export function registerInspect(program: Command, run: RunAction): void {
  program
    .command('inspect')
    .description('show one backup: manifest, units with counts, entries, checksums')
    .argument('<ref>', 'a backup id, "latest" (with --target), or a path to an archive')
    .option('--target <name>', 'the target, for "latest"')
    .action((ref: string, flags: { target?: string }, command: Command) =>
      run(command, async (ctx) => {
        const { inspectBackup } = await import('../app/inspect.js');
        const target = flags.target ?? (ctx.deps.config.targets.size === 1 ? [...ctx.deps.config.targets.keys()][0] : undefined);
        const s = await inspectBackup(ctx.deps, ref, target);
        ctx.print(s, () => {
          if (!('entries' in s)) {
            // The clear sidecar of an encrypted backup, read without its identity.
            return [
              `${s.id}  (target ${s.target}, driver ${s.driver})`,
              `created   ${s.createdAt}  in ${s.durationMs} ms`,
              `archive   ${s.archive.file}  ${formatBytes(s.archive.size)}  sha256 ${s.archive.sha256}`,
              `parts     ${s.parts.join(', ')}   ${s.units} unit(s), ${s.files} file(s)${s.tags.length ? `   tags ${s.tags.join(', ')}` : ''}`,
              ...(s.base ? [`base      ${s.base} (differential: the files it does not hold are in ${s.base})`] : []),
              ...(s.note ? [`note      ${s.note}`] : []),
              '',
              `encrypted with age (${s.encryption.passphrase ? 'a passphrase' : `recipients ${s.encryption.recipients!.join(', ')}`}): the units, entries and source are inside.`,
              'Give --identity <file> to see them.',
            ].join('\n');
          }
          const source = [s.source.database, s.source.host && `${s.source.host}:${s.source.port ?? ''}`, s.source.path].filter(Boolean).join(' ');
          const lines = [
            `${s.id}  (target ${s.target}, driver ${s.driver})`,
            `created   ${s.createdAt}  in ${s.durationMs} ms on ${s.host}`,
            `archive   ${s.archive.file}  ${formatBytes(s.archive.size)}  sha256 ${s.archive.sha256}`,
            `source    ${source || '-'}`,
            `tool      ${s.tool ? `${s.tool.name}: ${s.tool.version}` : '-'}`,
            `backupkit ${s.backupkitVersion}   parts ${s.parts.join(', ')}${s.tags.length ? `   tags ${s.tags.join(', ')}` : ''}`,
            ...(s.encryption ? [`encrypted with age (${s.encryption.passphrase ? 'a passphrase' : `recipients ${s.encryption.recipients!.join(', ')}`})`] : []),
            ...(s.base ? [`base      ${s.base} (differential: ${s.entries.filter((e) => e.base === undefined && e.path.startsWith('files/')).length} file(s) in this archive, ${s.entries.filter((e) => e.base !== undefined).length} in ${s.base})`] : []),
            ...(s.note ? [`note      ${s.note}`] : []),
            '',
            formatTable(['UNIT', 'KIND', 'COUNT'], s.units.map((u) => [u.name, u.kind, u.count === null ? '-' : String(u.count)])),
            '',
            s.base
              ? formatTable(['ENTRY', 'SIZE', 'SHA-256', 'IN'], s.entries.map((e) => [e.path, String(e.size), e.sha256, e.base === undefined ? 'this archive' : e.base]))
              : formatTable(['ENTRY', 'SIZE', 'SHA-256'], s.entries.map((e) => [e.path, String(e.size), e.sha256])),
          ];
          return lines.join('\n');
        });
        return 0;
      }),
    );
}
