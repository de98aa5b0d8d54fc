/**
 * In-memory storage: databases → collections → documents kept as raw BSON
 * Buffers in insertion order (so reads return the exact bytes written),
 * plus index specs. Uniqueness is enforced on `_id` only.
 */
import { createHash } from 'node:crypto';
import { BSON, Binary, Int32, ObjectId, type Document } from 'bson';
import { CommandError } from './errors.js';
import { valueKey } from './values.js';
import { EXACT_DECODE, serialize } from './wire.js';

/** One stored document: its exact bytes and the uniqueness key of its `_id`. */
export interface StoredDoc {
  raw: Buffer;
  idKey: string;
}

/** The `_id_` index every collection has. */
export function idIndexSpec(): Document {
  return { v: new Int32(2), key: { _id: new Int32(1) }, name: '_id_' };
}

let uuidCounter = 0;

/** Deterministic-per-run UUID (subtype 4) for a new collection. */
function newCollectionUuid(ns: string): Binary {
  const bytes = createHash('sha256').update(`${ns}#${++uuidCounter}`).digest().subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  return new Binary(bytes, Binary.SUBTYPE_UUID);
}

export function decodeDoc(raw: Buffer): Document {
  return BSON.deserialize(raw, EXACT_DECODE);
}

export function encodeDoc(doc: Document): Buffer {
  return serialize(doc);
}

/** Thrown for `_id` collisions; mapped to a writeError with code 11000. */
export class DuplicateKeyError extends CommandError {
  constructor(ns: string, readonly keyValue: Document) {
    super(11000, 'DuplicateKey', `E11000 duplicate key error collection: ${ns} index: _id_ dup key: ${BSON.EJSON.stringify(keyValue)}`);
  }
}

export class Collection {
  readonly uuid: Binary;
  /** Secondary index specs (the `_id_` index is implicit). */
  readonly indexes: Document[] = [];
  private docs: StoredDoc[] = [];
  private readonly ids = new Map<string, StoredDoc>();
  private bytes = 0;

  constructor(readonly ns: string, readonly options: Document) {
    this.uuid = newCollectionUuid(ns);
  }

  get count(): number {
    return this.docs.length;
  }

  get dataSize(): number {
    return this.bytes;
  }

  /** Documents in natural (insertion) order. Callers must not mutate the array. */
  all(): readonly StoredDoc[] {
    return this.docs;
  }

  /** Index specs as listIndexes reports them, `_id_` first. */
  indexSpecs(): Document[] {
    return [idIndexSpec(), ...this.indexes];
  }

  /**
   * Inserts one document given as raw BSON (stored as-is when `_id` is its
   * first field). A missing `_id` gets a new ObjectId; `_id` is moved first,
   * as mongod does. Throws DuplicateKeyError.
   */
  insert(raw: Buffer): StoredDoc {
    let doc = decodeDoc(raw);
    if (Object.keys(doc)[0] !== '_id') {
      // mongod stores `_id` as the first field, generating one when absent.
      const { _id: id, ...rest } = doc;
      doc = { _id: id === undefined ? new ObjectId() : id, ...rest };
      raw = encodeDoc(doc);
    }
    const idKey = valueKey(doc._id);
    if (this.ids.has(idKey)) throw new DuplicateKeyError(this.ns, { _id: doc._id });
    const stored = { raw, idKey };
    this.docs.push(stored);
    this.ids.set(idKey, stored);
    this.bytes += raw.length;
    return stored;
  }

  /** Replaces a stored document in place (keeps its position). Throws on `_id` collision. */
  replace(target: StoredDoc, doc: Document): void {
    const raw = encodeDoc(doc);
    const idKey = valueKey(doc._id);
    const other = this.ids.get(idKey);
    if (other && other !== target) throw new DuplicateKeyError(this.ns, { _id: doc._id });
    this.ids.delete(target.idKey);
    this.bytes += raw.length - target.raw.length;
    target.raw = raw;
    target.idKey = idKey;
    this.ids.set(idKey, target);
  }

  /** Removes the given documents. */
  remove(targets: ReadonlySet<StoredDoc>): void {
    if (targets.size === 0) return;
    this.docs = this.docs.filter((d) => !targets.has(d));
    for (const t of targets) {
      this.ids.delete(t.idKey);
      this.bytes -= t.raw.length;
    }
  }
}

/** All databases. Databases exist only while they hold a collection. */
export class Store {
  private readonly dbs = new Map<string, Map<string, Collection>>();

  databaseNames(): string[] {
    return [...this.dbs.keys()].sort();
  }

  collections(db: string): Map<string, Collection> {
    return this.dbs.get(db) ?? new Map();
  }

  get(db: string, name: string): Collection | undefined {
    return this.dbs.get(db)?.get(name);
  }

  /** Returns the collection, creating it (implicitly or via `create`) if needed. */
  ensure(db: string, name: string, options: Document = {}): { coll: Collection; created: boolean } {
    const existing = this.get(db, name);
    if (existing) return { coll: existing, created: false };
    validateName(db, name);
    const coll = new Collection(`${db}.${name}`, options);
    let colls = this.dbs.get(db);
    if (!colls) {
      colls = new Map();
      this.dbs.set(db, colls);
    }
    colls.set(name, coll);
    return { coll, created: true };
  }

  /** Drops a collection; returns false when it did not exist. */
  drop(db: string, name: string): boolean {
    const colls = this.dbs.get(db);
    if (!colls?.delete(name)) return false;
    if (colls.size === 0) this.dbs.delete(db);
    return true;
  }

  dropDatabase(db: string): boolean {
    return this.dbs.delete(db);
  }
}

function validateName(db: string, name: string): void {
  if (!db || /[/\\. "$\0]/.test(db)) throw new CommandError(73, 'InvalidNamespace', `Invalid database name: '${db}'`);
  if (!name || name.includes('$') || name.includes('\0') || name.startsWith('.')) {
    throw new CommandError(73, 'InvalidNamespace', `Invalid collection name: ${name}`);
  }
}
