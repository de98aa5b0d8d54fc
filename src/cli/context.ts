/** Everything a subcommand needs, built from the global options: config, logger, deps, output. */
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import type { AppDeps } from '../app/deps.js';
import type { Config } from '../config/load.js';
import { redact } from '../config/secrets.js';
import type { Logger } from '../core/driver.js';

export interface GlobalOptions {
  config?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  logFormat?: 'pretty' | 'json';
  progress: boolean;
  yes?: boolean;
  storage?: string;
  identity?: string;
}

export interface Io {
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  signal: AbortSignal;
  now: () => Date;
  version: string;
  /** Secrets known so far (filled from the config), scrubbed from every line printed. */
  secrets: Set<string>;
  /** Subscribe to requests to read the config again (SIGHUP); returns the way to unsubscribe. */
  onReload?: (listener: () => void) => () => void;
}

/** What a command that loads no config by itself (`config schema`, `config validate`) is handed. */
export interface BareContext {
  globals: GlobalOptions;
  io: Io;
  log: Logger;
  /** Print the command's result: the JSON document with --json, else the text. */
  print(json: unknown, text: () => string): void;
}

export interface CliContext extends BareContext {
  deps: AppDeps;
}

export function globalsOf(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

export type RunAction = (command: Command, action: (ctx: CliContext) => Promise<number>) => Promise<void>;
export type RunBareAction = (command: Command, action: (ctx: BareContext) => Promise<number>) => Promise<void>;

export async function createContext(command: Command, io: Io): Promise<CliContext> {
  const bare = await createBareContext(command, io);
  const config = await readConfig(bare.globals, io);
  const deps = await buildDeps(config, bare.globals, io, bare.log);
  return { ...bare, deps };
}

/** Logger and output, without loading the config. */
export async function createBareContext(command: Command, io: Io): Promise<BareContext> {
  const globals = globalsOf(command);
  // Loaded here, not at start-up: --help and --version stay fast.
  const { createLogger } = await import('./logger.js');
  const log = await createLogger({
    level: globals.quiet ? 'error' : globals.verbose ? 'debug' : 'info',
    format: globals.logFormat ?? (io.stderr.isTTY ? 'pretty' : 'json'),
    stderr: io.stderr,
    secrets: io.secrets,
  });
  return {
    globals,
    io,
    log,
    print(json, text) {
      const out = globals.json ? `${JSON.stringify(json, null, 2)}\n` : `${text()}\n`;
      io.stdout.write(redact(out, io.secrets));
    },
  };
}

/** Load the config named by -c (or found from the current folder); its secrets join io.secrets. */
export async function readConfig(globals: GlobalOptions, io: Io): Promise<Config> {
  const [{ loadConfig }, { createDriverRegistry }] = await Promise.all([import('../config/load.js'), import('../drivers/registry.js')]);
  const config = await loadConfig({ file: globals.config, cwd: io.cwd, env: io.env, drivers: createDriverRegistry(), now: io.now });
  for (const secret of config.secrets) io.secrets.add(secret);
  return config;
}

/** What the app functions are handed, for one config (the daemon builds it anew on SIGHUP). */
export async function buildDeps(config: Config, globals: GlobalOptions, io: Io, log: Logger): Promise<AppDeps> {
  const [{ createStorages }, { StateDir, defaultStateRoot }, { createRunner }, { createProgress }] = await Promise.all([
    import('../storage/registry.js'),
    import('../storage/state.js'),
    import('../drivers/spawn.js'),
    import('./progress.js'),
  ]);
  const progressOn = globals.progress && !globals.quiet && Boolean(io.stderr.isTTY) && !io.env.CI;
  const storages = await createStorages(config);
  return {
    config,
    storages: globals.storage ? storages.only(globals.storage) : storages,
    state: new StateDir(config.stateDir ?? defaultStateRoot(io.env, os.homedir())),
    runner: createRunner(log, (text) => redact(text, io.secrets)),
    log,
    now: io.now,
    env: io.env,
    cwd: io.cwd,
    signal: io.signal,
    progress: await createProgress(progressOn, io.stderr),
    host: os.hostname(),
    version: io.version,
    identityFile: globals.identity
      ? { file: path.resolve(io.cwd, globals.identity), source: `--identity ${globals.identity}` }
      : io.env.BACKUPKIT_IDENTITY_FILE
        ? { file: path.resolve(io.cwd, io.env.BACKUPKIT_IDENTITY_FILE), source: `BACKUPKIT_IDENTITY_FILE (${io.env.BACKUPKIT_IDENTITY_FILE})` }
        : undefined,
    listeners: [(await import('../notify/index.js')).createNotifier(config, { log, host: os.hostname(), version: io.version })],
  };
}
