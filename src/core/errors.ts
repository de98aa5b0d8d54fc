/**
 * Typed errors. Each class carries the exit code the contract assigns to it; src/main.ts is the
 * only place that turns them into a process exit. `cause` holds the underlying error, shown with
 * --verbose.
 */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  verification: 3,
  locked: 4,
  refused: 5,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class BackupkitError extends Error {
  readonly exitCode: ExitCodeValue = ExitCode.failed;
  /** A hint telling the operator what to do next, printed under the message. */
  readonly hint: string | undefined;
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }
}

/** The operation failed: a dump tool exited non-zero, a connection was refused, a timeout. */
export class OperationError extends BackupkitError {}

/** Bad arguments or a bad config file. */
export class UsageError extends BackupkitError {
  override readonly exitCode = ExitCode.usage;
}

/** A config file problem: names the file and the key path. */
export class ConfigError extends UsageError {
  constructor(
    readonly file: string | undefined,
    readonly problems: string[],
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(
      (file ? `${file}: ` : '') +
        (problems.length === 1 ? problems[0] : `${problems.length} problems:\n  - ${problems.join('\n  - ')}`),
      options,
    );
  }
}

/** An archive failed its checks: corrupt, truncated, missing, or a checksum mismatch. */
export class VerificationError extends BackupkitError {
  override readonly exitCode = ExitCode.verification;
}

/** Another live run holds the target's lock. */
export class LockedError extends BackupkitError {
  override readonly exitCode = ExitCode.locked;
}

/** A restore that was not confirmed. */
export class RefusedError extends BackupkitError {
  override readonly exitCode = ExitCode.refused;
}

/** SIGINT or SIGTERM arrived; partial files have been removed. */
export class InterruptedError extends BackupkitError {
  override readonly exitCode = ExitCode.interrupted;
}

/** A required tool (pg_dump, mongodump, ...) is not installed. */
export class ToolMissingError extends OperationError {}

/** A child process exited non-zero. The message names the command (no secrets) and its stderr tail. */
export class ToolFailedError extends OperationError {
  constructor(
    readonly command: string,
    readonly exitCodeOfTool: number | undefined,
    readonly signal: string | undefined,
    readonly stderrTail: string,
  ) {
    const how = signal ? `was killed by ${signal}` : `exited with code ${exitCodeOfTool}`;
    super(`${command} ${how}${stderrTail ? `:\n${indent(stderrTail)}` : ''}`);
  }
}

export class TimeoutError extends OperationError {}

export function exitCodeOf(error: unknown): ExitCodeValue {
  return error instanceof BackupkitError ? error.exitCode : ExitCode.failed;
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}

/**
 * An error met while reading an archive, as the reader reports it: damage (exit 3), unless it is a
 * storage that failed to deliver the bytes or an interrupt, which passes through as it is, so a
 * bucket that drops a connection is not reported as a corrupt backup.
 */
export function readFailure(error: unknown, message: string): BackupkitError {
  if (saysNothingOfArchive(error)) return error;
  return new VerificationError(message, { cause: error });
}

/** An error met while reading an archive that is not damage: a storage that failed to deliver the bytes, or an interrupt. */
export function saysNothingOfArchive(error: unknown): error is BackupkitError {
  return error instanceof BackupkitError && error.exitCode !== ExitCode.verification;
}
