/** config schema | config validate: the config's JSON Schema, and a check of a config that touches nothing else. */
import type { Command } from 'commander';
import type { RunBareAction } from './context.js';

export function registerConfig(program: Command, run: RunBareAction): void {
  const config = program.command('config').description('the config file: its JSON Schema, and checking one');
  config
    .command('schema')
    .description('print the JSON Schema of the config (for "$schema" in an editor)')
    .action((_flags: unknown, command: Command) =>
      run(command, async (ctx) => {
        const [{ configJsonSchema }, { createDriverRegistry }] = await Promise.all([import('../config/jsonschema.js'), import('../drivers/registry.js')]);
        const schema = configJsonSchema(createDriverRegistry());
        ctx.print(schema, () => JSON.stringify(schema, null, 2));
        return 0;
      }),
    );
  config
    .command('validate')
    .description('check the config (-c, or the one found from here) as every command does; no storage is opened, no server contacted')
    .action((_flags: unknown, command: Command) =>
      run(command, async (ctx) => {
        const { readConfig } = await import('./context.js');
        const loaded = await readConfig(ctx.globals, ctx.io);
        const targets = [...loaded.targets.keys()];
        const storages = loaded.storages.map((s) => s.name);
        const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
        ctx.print({ ok: true, file: loaded.file, targets, storages }, () => `ok: ${count(targets.length, 'target')}, ${count(storages.length, 'storage')} (${loaded.file})`);
        return 0;
      }),
    );
}
