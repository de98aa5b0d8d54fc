/** Shared types and argument helpers for command handlers. */
import { Double, type Document } from 'bson';
import type { CursorRegistry } from './cursors.js';
import { badValue, invalidNamespace } from './errors.js';
import { decodeDoc, type Store } from './store.js';
import { isNumeric, toNumber } from './values.js';
import type { IncomingCommand } from './wire.js';

/** Per-connection view of the server handed to every command handler. */
export interface CommandContext {
  store: Store;
  cursors: CursorRegistry;
  connectionId: number;
  /** Remote address as `host:port`. */
  client: string;
  startedAt: Date;
  log: (line: string) => void;
}

/** A reply document, or an already-encoded BSON reply (cursor batches). */
export type Reply = Document | Buffer;

/** Handlers are synchronous: everything lives in memory. Throw CommandError to fail. */
export type Handler = (cmd: IncomingCommand, ctx: CommandContext) => Reply;

/** `ok: 1.0` as mongod sends it (a BSON double). */
export const OK = new Double(1);

/** The database the command targets (`$db`). */
export function dbOf(body: Document): string {
  const db = body.$db;
  if (typeof db !== 'string' || db === '') throw badValue('missing $db');
  return db;
}

/** The collection named by the command's first field, e.g. `{ find: 'c' }`. */
export function collectionArg(body: Document, command: string): string {
  const name = body[command];
  if (typeof name !== 'string' || name === '') throw invalidNamespace(`collection name has invalid type ${typeof name}`);
  return name;
}

/** A numeric option as a JS number, or undefined when absent/null. */
export function numberArg(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isNumeric(v)) throw badValue(`expected a number, got ${typeof v}`);
  return toNumber(v);
}

/** A document option, or undefined when absent/null. */
export function docArg(v: unknown, name: string): Document | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw badValue(`'${name}' must be an object`);
  return v as Document;
}

/** A boolean-ish option (true, 1, 1.0). */
export function boolArg(v: unknown, fallback: boolean): boolean {
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'boolean') return v;
  return isNumeric(v) ? toNumber(v) !== 0 : fallback;
}

/** Cursor id from a Long/Int64/number field. */
export function cursorIdArg(v: unknown): bigint {
  if (v === undefined || v === null || !isNumeric(v)) throw badValue('cursor id must be a number');
  return BigInt(String(v));
}

/** `cursor.batchSize` of commands like aggregate/listCollections. */
export function cursorBatchSize(body: Document): number | undefined {
  return numberArg(docArg(body.cursor, 'cursor')?.batchSize);
}

/**
 * Raw BSON of the `documents` to insert: from the kind-1 document sequence
 * when present, else from the body (parsed with `documents` kept raw).
 */
export function rawDocuments(cmd: IncomingCommand): Buffer[] {
  const seq = cmd.sequences.get('documents');
  if (seq) return seq;
  const inline: unknown = cmd.body.documents;
  if (inline === undefined) return [];
  if (!Array.isArray(inline) || !inline.every((d) => Buffer.isBuffer(d))) throw badValue(`'documents' must be an array of objects`);
  return inline;
}

/** Decoded statements of `updates`/`deletes`, from a document sequence or the body. */
export function writeStatements(cmd: IncomingCommand, field: 'updates' | 'deletes'): Document[] {
  const seq = cmd.sequences.get(field);
  if (seq) return seq.map(decodeDoc);
  const inline: unknown = cmd.body[field];
  if (inline === undefined) return [];
  if (!Array.isArray(inline)) throw badValue(`'${field}' must be an array`);
  return inline as Document[];
}
