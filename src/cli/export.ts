/** export <ref> <dest>: one backup's archive to a path, or to stdout with "-". */
import type { Command } from 'commander';
import { formatBytes } from '../core/format.js';
import type { RunAction } from './context.js';

export function registerExport(program: Command, run: RunAction): void {
  program
    .command('export')
    .description("write one backup's archive to a path, or to stdout with -, checking its SHA-256 as it streams")
    .usage('[options] [target] <ref> <dest>')
    .argument('<args...>', '[target] <ref> <dest>: the target (for "latest"), a backup id or "latest", and a file, a folder or - for stdout')
    .option('--target <name>', 'the target, for "latest"')
    .option('--decrypt', 'write the plain zip of an encrypted backup (needs its identity)')
    .action((args: string[], flags: { target?: string; decrypt?: boolean }, command: Command) =>
      run(command, async (ctx) => {
        const { UsageError } = await import('../core/errors.js');
        if (args.length < 2 || args.length > 3) throw new UsageError('export takes a ref and a destination: export [target] <ref> <dest>', { hint: 'The destination is a file, a folder, or - for stdout.' });
        // `export crm latest -` names the target before "latest", as restore does.
        const [target, ref, dest] = args.length === 3 ? [args[0]!, args[1]!, args[2]!] : [flags.target, args[0]!, args[1]!];
        if (args.length === 3 && flags.target && flags.target !== target) throw new UsageError(`two targets given: ${target} and --target ${flags.target}`);
        if (target) (await import('../app/deps.js')).getTarget(ctx.deps, target);
        if (dest === '-' && ctx.globals.json) throw new UsageError('--json cannot go with -: the archive is what goes to stdout');
        const { exportBackup } = await import('../app/export.js');
        const result = await exportBackup(ctx.deps, ref, dest === '-' ? { kind: 'stream', stream: ctx.io.stdout } : { kind: 'file', path: dest }, {
          target,
          decrypt: Boolean(flags.decrypt),
        });
        if (dest === '-') ctx.log.info({ id: result.id, bytes: result.bytes }, `exported ${result.id} (${formatBytes(result.bytes)}) to stdout`);
        else ctx.print(result, () => `✔ exported ${result.id}${result.decrypted ? ' (decrypted)' : ''} to ${result.dest}  ${formatBytes(result.bytes)}  sha256 ${result.sha256}`);
        return 0;
      }),
    );
}
