/**
 * Logs go to stderr through pino: JSON lines, or pretty text on a terminal. Every line is scrubbed
 * of the config's secrets before it is written. Error objects are logged with their stacks only at
 * debug level (--verbose).
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from '../core/driver.js';
import { redact } from '../config/secrets.js';

export interface LoggerOptions {
  level: 'error' | 'info' | 'debug';
  format: 'pretty' | 'json';
  stderr: NodeJS.WriteStream;
  secrets: Set<string>;
}

export async function createLogger(options: LoggerOptions): Promise<Logger> {
  const scrubbed = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      options.stderr.write(redact(chunk.toString('utf8'), options.secrets));
      callback();
    },
  });
  if (options.format === 'json') {
    return adapt(pino({ level: options.level, base: { name: 'backupkit' } }, scrubbed));
  }
  const { default: pretty } = await import('pino-pretty');
  const stream = pretty({
    destination: scrubbed,
    sync: true,
    colorize: Boolean(options.stderr.isTTY),
    ignore: 'pid,hostname,name',
    translateTime: 'HH:MM:ss',
    hideObject: options.level !== 'debug',
  });
  return adapt(pino({ level: options.level }, stream));
}

function adapt(logger: pino.Logger): Logger {
  return {
    debug: logger.debug.bind(logger) as Logger['debug'],
    info: logger.info.bind(logger) as Logger['info'],
    warn: logger.warn.bind(logger) as Logger['warn'],
    error: logger.error.bind(logger) as Logger['error'],
  };
}
