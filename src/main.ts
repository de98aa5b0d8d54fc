/**
 * The entry point: parse argv, run one command, turn its outcome into an exit code. This is the only
 * place that calls process.exit; every error is mapped here (contract: "Exit codes").
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option, type OutputConfiguration } from 'commander';
import { redact } from './config/secrets.js';
import { BackupkitError, ExitCode, InterruptedError, errorMessage, exitCodeOf } from './core/errors.js';
import { registerAuto } from './cli/auto.js';
import { registerBackup } from './cli/backup.js';
import { registerClean } from './cli/clean.js';
import { registerConfig } from './cli/config.js';
import { registerCopy } from './cli/copy.js';
import { registerDaemon } from './cli/daemon.js';
import { type CliContext, type Io, type RunAction, type RunBareAction, createBareContext, createContext, globalsOf } from './cli/context.js';
import { registerDoctor } from './cli/doctor.js';
import { registerDelete } from './cli/delete.js';
import { registerDiff } from './cli/diff.js';
import { registerExport } from './cli/export.js';
import { registerHistory } from './cli/history.js';
import { registerImport } from './cli/import.js';
import { registerInspect } from './cli/inspect.js';
import { registerList } from './cli/list.js';
import { registerNotify } from './cli/notify.js';
import { registerRestore } from './cli/restore.js';
import { registerVerify } from './cli/verify.js';

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export function buildProgram(run: RunAction, runBare: RunBareAction, output: OutputConfiguration): Command {
  const program = new Command('backupkit')
    .configureOutput(output)
    .description('Back up and restore databases into verified, timestamped zip archives.')
    .version(version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .option('-c, --config <file>', 'config file (default: search for backupkit.config.* from the current folder)')
    .option('--json', 'print exactly one JSON document on stdout')
    .option('-q, --quiet', 'errors only')
    .option('-v, --verbose', 'debug logs, and the causes of errors')
    .addOption(new Option('--log-format <format>', 'log format on stderr').choices(['pretty', 'json']))
    .option('--no-progress', 'no spinner or progress (automatic off a terminal or when CI is set)')
    .option('-y, --yes', 'answer yes to confirmations')
    .option('--storage <name>', 'read from (and for clean, delete, import: act on) this storage only')
    .option('-i, --identity <file>', 'an age identity file to decrypt encrypted backups (also BACKUPKIT_IDENTITY_FILE)')
    .showSuggestionAfterError(true)
    .exitOverride();
  registerBackup(program, run);
  registerList(program, run);
  registerInspect(program, run);
  registerRestore(program, run);
  registerVerify(program, run);
  registerClean(program, run);
  registerHistory(program, run);
  registerAuto(program, run);
  registerCopy(program, run);
  registerDoctor(program, run);
  registerDaemon(program, run);
  registerNotify(program, run);
  registerDelete(program, run);
  registerImport(program, run);
  registerExport(program, run);
  registerDiff(program, run);
  registerConfig(program, runBare);
  for (const command of program.commands) {
    command.exitOverride();
    for (const sub of command.commands) sub.exitOverride();
  }
  program.addHelpText(
    'after',
    '\nExit codes: 0 ok, 1 failed, 2 usage or config error, 3 verification failed, 4 locked, 5 not confirmed, 130 interrupted.',
  );
  return program;
}

export async function main(io: Io): Promise<number> {
  let exitCode: number = ExitCode.ok;
  let json = io.argv.includes('--json');
  let verbose = io.argv.includes('-v') || io.argv.includes('--verbose');
  let commanderMessage = '';
  const run: RunAction = async (command, action) => {
    const globals = globalsOf(command);
    json = Boolean(globals.json);
    verbose = Boolean(globals.verbose);
    let ctx: CliContext | undefined;
    try {
      ctx = await createContext(command, io);
      exitCode = await action(ctx);
    } catch (error) {
      exitCode = report(error, io, { json, verbose });
    } finally {
      ctx?.deps.progress.stop();
    }
  };
  const runBare: RunBareAction = async (command, action) => {
    const globals = globalsOf(command);
    json = Boolean(globals.json);
    verbose = Boolean(globals.verbose);
    try {
      exitCode = await action(await createBareContext(command, io));
    } catch (error) {
      exitCode = report(error, io, { json, verbose });
    }
  };
  const program = buildProgram(run, runBare, {
    writeOut: (text) => io.stdout.write(text),
    writeErr: (text) => {
      commanderMessage += text;
    },
    outputError: (text) => {
      commanderMessage += text;
    },
  });
  try {
    await program.parseAsync(io.argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return ExitCode.ok;
      if (error.code === 'commander.help') {
        // No command given: the help, on stderr, and a usage error.
        io.stderr.write(commanderMessage);
        return ExitCode.usage;
      }
      const message = (commanderMessage || error.message).replace(/^error: /, '').trim();
      if (json) io.stdout.write(`${JSON.stringify({ error: { code: ExitCode.usage, message } })}\n`);
      else io.stderr.write(`backupkit: ${message}\n(see backupkit --help)\n`);
      return ExitCode.usage;
    }
    return report(error, io, { json, verbose });
  }
  return exitCode;
}

/** Print an error for the operator (no stack unless --verbose) and return its exit code. */
function report(error: unknown, io: Io, options: { json: boolean; verbose: boolean }): number {
  const code = exitCodeOf(error);
  const scrub = (text: string) => redact(text, io.secrets);
  const message = scrub(errorMessage(error));
  if (options.json) {
    io.stdout.write(`${JSON.stringify({ error: { code, message } })}\n`);
  }
  if (!options.json || options.verbose) {
    let text = `backupkit: ${message}\n`;
    if (error instanceof BackupkitError && error.hint) text += `${scrub(error.hint)}\n`;
    if (options.verbose) {
      let cause: unknown = error;
      while (cause instanceof Error) {
        text += `${scrub(cause.stack ?? cause.message)}\n`;
        cause = cause.cause;
        if (cause !== undefined) text += 'caused by: ';
      }
    } else if (!(error instanceof BackupkitError)) {
      text += '(run with --verbose for details)\n';
    }
    io.stderr.write(text);
  }
  return code;
}

const controller = new AbortController();
let signals = 0;
const onSignal = (signal: NodeJS.Signals) => {
  signals++;
  if (signals > 1) process.exit(ExitCode.interrupted);
  controller.abort(new InterruptedError(`interrupted by ${signal}; partial files were removed`));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
// A reader that stops early (`backupkit list | head`) closes the pipe: not an error, and the run
// goes on to the end; later writes to stdout are dropped.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

const code = await main({
  argv: process.argv.slice(2),
  env: process.env,
  cwd: process.cwd(),
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  signal: controller.signal,
  now: () => new Date(),
  version,
  secrets: new Set(),
  // SIGHUP is only caught while someone listens (the daemon); other commands keep its default.
  onReload: (listener) => {
    process.on('SIGHUP', listener);
    return () => process.off('SIGHUP', listener);
  },
});
process.exitCode = code;
// Writes to a pipe are asynchronous: wait until stdout and stderr have taken every byte (a piped
// `--json` document must arrive whole), then leave even if some handle lingers.
const drained = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => stream.write('', () => resolve()));
await Promise.all([drained(process.stdout), drained(process.stderr)]);
process.exit(code);
