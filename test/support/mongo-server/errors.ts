/** Command failures, serialized by the server as `{ ok: 0, errmsg, code, codeName }`. */
export class CommandError extends Error {
  constructor(
    readonly code: number,
    readonly codeName: string,
    message: string,
  ) {
    super(message);
    this.name = 'CommandError';
  }

  /** The reply document mongod would send for this error. */
  toReply(): { ok: 0; errmsg: string; code: number; codeName: string } {
    return { ok: 0, errmsg: this.message, code: this.code, codeName: this.codeName };
  }
}

export const nsNotFound = (ns: string): CommandError => new CommandError(26, 'NamespaceNotFound', `ns not found: ${ns}`);
export const badValue = (msg: string): CommandError => new CommandError(2, 'BadValue', msg);
export const invalidNamespace = (msg: string): CommandError => new CommandError(73, 'InvalidNamespace', msg);

/**
 * A feature the test server deliberately does not implement. Answered like
 * any command error, and also logged by the dispatcher so gaps are visible.
 */
export class UnsupportedError extends CommandError {
  constructor(message: string, code = 2, codeName = 'BadValue') {
    super(code, codeName, `${message} (not supported by the backupkit mongo test server)`);
  }
}
