/**
 * The driver interface every adapter implements (pg_dump, sqlite, and later mongodump, mongo-json,
 * django-dumpdata, mysqldump). A driver turns a database into one or more archive entries under
 * `db/`, and such entries back into a database. It never sees the zip, the storage or the CLI:
 * the app layer hands it a sink to stream into and a source to stream from.
 */
import type { Readable, Transform } from 'node:stream';
import type { z } from 'zod';
import type { EntryRecord, Source, ToolInfo, Unit } from './manifest.js';

/**
 * Where `verify --deep` restores a backup of this driver (contract: `verify --deep`):
 *   database     a temporary database on the target's server, named by the app (scratch.ts) and
 *                reached through `withInto`; created by the restore, found by `listScratch`,
 *                dropped by `dropScratch`
 *   file         a temporary file the app names in the state folder, reached through `withInto`
 *   alias        an existing database the target's config names (`alias`), emptied before the
 *                restore (`RestorePlan.flush`) and by `dropScratch` after it
 *   unavailable  this target's backups cannot be restored into a scratch, and why
 */
export type ScratchPlan =
  | { kind: 'database' }
  | { kind: 'file' }
  | { kind: 'alias'; alias: string }
  | { kind: 'unavailable'; reason: string };

export type LogFn = (objOrMessage: object | string, message?: string) => void;
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

/** A command line as data: built by pure functions, run by a ProcessRunner. No shell, ever. */
export interface CommandSpec {
  command: string;
  args: string[];
  /** Added to the inherited environment; secrets travel here, never in args. */
  env?: Record<string, string | undefined>;
  cwd?: string;
}

export interface RunningCommand {
  stdout: Readable;
  /** Resolves when the process exits 0; rejects with ToolFailedError, or the abort reason. */
  done: Promise<void>;
  /** Stop the process group (SIGTERM, then SIGKILL); `done` then rejects with `reason`. */
  kill(reason?: unknown): void;
}

export interface ProcessRunner {
  /** Start a process whose stdout is streamed; stdin is fed from `stdin` when given. */
  start(spec: CommandSpec, options: { signal: AbortSignal; stdin?: Readable | string }): Promise<RunningCommand>;
  /** Run a process to completion and collect its (small) output. */
  run(spec: CommandSpec, options: { signal: AbortSignal; stdin?: Readable | string }): Promise<{ stdout: string; stderr: string }>;
}

export interface DriverContext {
  target: string;
  signal: AbortSignal;
  log: Logger;
  runner: ProcessRunner;
  env: NodeJS.ProcessEnv;
  /** The target's `bin` folder, searched for tools before PATH. */
  bin: string | undefined;
  /**
   * A path for a temporary file that cannot be avoided, inside the storage folder and named so
   * that a later run removes it if this one dies. The caller removes it when done.
   */
  tempPath(name: string): string;
}

/**
 * A driver's own compression for an entry, given the archive's level (0-9): a gzip stream, or a
 * dump in its tool's compressed format, that the tool reads back as it reads its own.
 */
export type Encoder = (level: number) => Transform;

export interface EntrySink {
  /**
   * Stream one entry into the archive as `path` (under `db/`). Resolves once the entry is written,
   * with its size and SHA-256. `compressed` entries are stored as they are, others are deflated;
   * with `encode`, the entry is the encoder's output at the archive's compression level, stored.
   */
  add(path: string, stream: Readable, options: { compressed: boolean; encode?: Encoder }): Promise<EntryRecord>;
  /** The file `file`, as `add` would take it, read by the archive writer through buffers it reuses. */
  addFile(path: string, file: string, options: { compressed: boolean }): Promise<EntryRecord>;
}

export interface ArchiveSource {
  /** The entries the manifest lists, already verified against their checksums. */
  entries: EntryRecord[];
  open(path: string): Promise<Readable>;
}

export interface DumpResult {
  units: Unit[];
  tool: ToolInfo | null;
}

export interface RestorePlan {
  /** Unit names (as the manifest lists them) to restore; undefined restores everything. */
  only: string[] | undefined;
  /** Set when restoring into another database than the target's; create it when missing. */
  into: string | undefined;
  /** The units the archive holds, from its manifest. */
  units: Unit[];
  /** Where the archive's data came from (its manifest's `source`). */
  source: Source;
  /** Empty the database before loading (`restore --flush`; drivers that load into existing data). */
  flush: boolean;
}

export interface Driver<Options = any> {
  readonly name: string;
  /** The driver's own config keys; the common ones (driver, files, timeout, ...) are added by config/. */
  readonly optionsSchema: z.ZodObject<z.ZodRawShape>;
  /** Option keys holding filesystem paths, resolved against the config file's folder. */
  readonly pathKeys: readonly string[];
  /** Where the data lives, for manifests and confirmations. No secrets. */
  describe(options: Options): Source;
  /** The same options aimed at another database (or file: a relative one resolves against `cwd`), for `restore --into`. */
  withInto(options: Options, into: string, cwd: string): Options;
  dump(ctx: DriverContext, options: Options, sink: EntrySink): Promise<DumpResult>;
  restore(ctx: DriverContext, options: Options, archive: ArchiveSource, plan: RestorePlan): Promise<void>;
  /** True when there is nothing to lose: no database, no tables, or the `emptyCheck` unit is empty. */
  isEmpty(ctx: DriverContext, options: Options): Promise<boolean>;
  /**
   * Does an operator's `--only` name denote this unit? Defaults to an exact match. A name may
   * denote several units (a Django app label covers its models).
   */
  matchesUnit?(name: string, unit: Unit): boolean;
  /** How `verify --deep` gets a scratch for a backup whose manifest says it came from `source`. */
  scratch(options: Options, source: Source): ScratchPlan;
  /**
   * The count of each of `units` (as the manifest names them) in the database `options` point at,
   * counted as the dump counted them; null for a unit that is not there.
   */
  countUnits(ctx: DriverContext, options: Options, units: Unit[]): Promise<(number | null)[]>;
  /** Scratch databases on the target's server whose names start with `prefix` (kind `database`). */
  listScratch?(ctx: DriverContext, options: Options, prefix: string): Promise<string[]>;
  /**
   * Drop the scratch database `name` on the target's server, if it is there (kind `database`);
   * empty the alias `name` (kind `alias`). `options` are the target's own.
   */
  dropScratch?(ctx: DriverContext, options: Options, name: string): Promise<void>;
  /** Problems the schema cannot express (e.g. "url or database"), as `key: what is wrong`. */
  check?(options: Options): string[];
  /**
   * Load the client libraries `purpose` will use, so that their start-up overlaps other work (restore
   * loads them while it checks the archive). Never reaches the database; a failure is left for the
   * real use to report.
   */
  prepare?(purpose: 'dump' | 'restore'): Promise<void>;
  /** Check the tools exist before anything else happens; throws ToolMissingError. */
  checkTools?(ctx: DriverContext, options: Options, purpose: 'dump' | 'restore'): Promise<void>;
  /**
   * Every tool (or embedded library) that dump and restore use, found as they would find it and
   * asked its version, for `doctor`. Throws ToolMissingError, whose hint names the package.
   */
  tools?(ctx: DriverContext, options: Options): Promise<ToolInfo[]>;
  /**
   * Reach the database as dump would and make the cheapest round trip; resolves with what answered
   * (engine, version, where; never a secret). Throws an OperationError with a hint when it cannot.
   * Stops when `ctx.signal` aborts.
   */
  ping?(ctx: DriverContext, options: Options): Promise<string>;
}

/** Drivers by name. Built in main and passed down; an unknown or duplicate name is an error. */
export interface DriverRegistry {
  get(name: string): Driver | undefined;
  names(): string[];
}
