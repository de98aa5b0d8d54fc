/**
 * Command dispatch: finds the handler for a command body and turns the
 * outcome (reply document, pre-encoded reply, or error) into BSON.
 */
import { Double, Int32, type Document } from 'bson';
import { adminCommands } from './admin-commands.js';
import { aggregate } from './aggregate.js';
import { catalogCommands } from './catalog-commands.js';
import type { CommandContext, Handler } from './context.js';
import { CommandError, UnsupportedError } from './errors.js';
import { crudCommands } from './crud-commands.js';
import { serialize, type IncomingCommand } from './wire.js';

const handlers: ReadonlyMap<string, Handler> = new Map(Object.entries({
  ...adminCommands,
  ...catalogCommands,
  ...crudCommands,
  aggregate,
}));

/** The command name: the first field of the body. */
export function commandName(body: Document): string {
  return Object.keys(body)[0] ?? '';
}

function errorReply(err: CommandError): Document {
  const { ok, errmsg, code, codeName } = err.toReply();
  return { ok: new Double(ok), errmsg, code: new Int32(code), codeName };
}

/**
 * Runs one command and returns the BSON reply body. Never throws:
 * unknown commands answer CommandNotFound (59) and are logged; unexpected
 * exceptions answer InternalError (1) and are logged.
 */
export function runCommand(cmd: IncomingCommand, ctx: CommandContext): Buffer {
  const name = commandName(cmd.body);
  const handler = handlers.get(name);
  let reply: Document | Buffer;
  if (!handler) {
    ctx.log(`mongo-test-server: unknown command '${name}' on db '${String(cmd.body.$db)}' (conn ${ctx.connectionId})`);
    reply = errorReply(new CommandError(59, 'CommandNotFound', `no such command: '${name}'`));
  } else {
    try {
      reply = handler(cmd, ctx);
    } catch (err) {
      if (!(err instanceof CommandError)) {
        ctx.log(`mongo-test-server: command '${name}' crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        err = new CommandError(1, 'InternalError', err instanceof Error ? err.message : String(err));
      }
      if (err instanceof UnsupportedError) ctx.log(`mongo-test-server: '${name}' hit an unsupported feature: ${err.message}`);
      reply = errorReply(err as CommandError);
    }
  }
  return Buffer.isBuffer(reply) ? reply : serialize(reply);
}
