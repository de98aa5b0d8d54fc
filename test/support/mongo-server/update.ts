/**
 * Update documents: replacement and the common operators ($set, $unset,
 * $inc, $mul, $min, $max, $setOnInsert, $push, $addToSet, $pull, $rename,
 * $currentDate), plus building the base document of an upsert.
 */
import { Double, Int32, Long, ObjectId, type Document } from 'bson';
import { badValue, CommandError, UnsupportedError } from './errors.js';
import { matchesFilter } from './query.js';
import { compareValues, isNumeric, isPlainObject, numericValue, valuesEqual, type BsonValue } from './values.js';

/** True when `u` uses update operators rather than being a replacement document. */
export function isOperatorUpdate(u: Document): boolean {
  return Object.keys(u).some((k) => k.startsWith('$'));
}

type Container = Document | BsonValue[];

/** Walks to the parent of a dotted path, creating embedded documents when `create`. */
function parentOf(doc: Document, path: string, create: boolean): { parent: Container; key: string } | undefined {
  const parts = path.split('.');
  const key = parts.pop() as string;
  let node: Container = doc;
  for (const part of parts) {
    const next: BsonValue = Array.isArray(node) ? node[Number(part)] : node[part];
    if (isPlainObject(next) || Array.isArray(next)) { node = next; continue; }
    if (!create) return undefined;
    if (next !== undefined && next !== null) throw new CommandError(28, 'PathNotViable', `Cannot create field '${part}' in element {${part}: ${String(next)}}`);
    const fresh: Document = {};
    if (Array.isArray(node)) node[Number(part)] = fresh; else node[part] = fresh;
    node = fresh;
  }
  return { parent: node, key };
}

function getField(doc: Document, path: string): BsonValue {
  const loc = parentOf(doc, path, false);
  if (!loc) return undefined;
  return Array.isArray(loc.parent) ? loc.parent[Number(loc.key)] : loc.parent[loc.key];
}

function setField(doc: Document, path: string, value: BsonValue): void {
  const { parent, key } = parentOf(doc, path, true) as { parent: Container; key: string };
  if (Array.isArray(parent)) parent[Number(key)] = value; else parent[key] = value;
}

function unsetField(doc: Document, path: string): void {
  const loc = parentOf(doc, path, false);
  if (!loc) return;
  if (Array.isArray(loc.parent)) loc.parent[Number(loc.key)] = null; else delete loc.parent[loc.key];
}

/** Adds/multiplies numbers keeping the widest BSON type of the operands (Int32 < Long < Double). */
function arithmetic(a: BsonValue, b: BsonValue, op: (x: number, y: number) => number, opBig: (x: bigint, y: bigint) => bigint): BsonValue {
  if (!isNumeric(b)) throw new CommandError(14, 'TypeMismatch', 'Cannot apply arithmetic with a non-numeric argument');
  if (a === undefined) a = new Int32(0);
  if (!isNumeric(a)) throw new CommandError(14, 'TypeMismatch', 'Cannot apply arithmetic to a non-numeric field');
  const x = numericValue(a);
  const y = numericValue(b);
  if (typeof x === 'bigint' && typeof y === 'bigint') {
    const r = opBig(x, y);
    const wide = a instanceof Long || b instanceof Long || r > 2147483647n || r < -2147483648n;
    return wide ? Long.fromBigInt(r) : new Int32(Number(r));
  }
  return new Double(op(Number(x), Number(y)));
}

function eachValues(v: BsonValue): BsonValue[] {
  return isPlainObject(v) && Array.isArray(v.$each) ? (v.$each as BsonValue[]) : [v];
}

function arrayField(doc: Document, path: string): BsonValue[] {
  const cur = getField(doc, path);
  if (cur === undefined) { const fresh: BsonValue[] = []; setField(doc, path, fresh); return fresh; }
  if (!Array.isArray(cur)) throw new CommandError(2, 'BadValue', `The field '${path}' must be an array`);
  return cur;
}

/** Applies one operator's `{path: arg}` pairs to `doc` (mutating it). */
function applyOperator(doc: Document, op: string, args: Document, isInsert: boolean): void {
  for (const [path, arg] of Object.entries(args)) {
    if (path === '_id' || path.startsWith('_id.')) {
      if (op !== '$setOnInsert' && !(op === '$set' && valuesEqual(getField(doc, '_id'), arg))) {
        throw new CommandError(66, 'ImmutableField', "Performing an update on the path '_id' would modify the immutable field '_id'");
      }
    }
    switch (op) {
      case '$set': setField(doc, path, arg); break;
      case '$setOnInsert': if (isInsert) setField(doc, path, arg); break;
      case '$unset': unsetField(doc, path); break;
      case '$inc': setField(doc, path, arithmetic(getField(doc, path), arg, (x, y) => x + y, (x, y) => x + y)); break;
      case '$mul': setField(doc, path, arithmetic(getField(doc, path) ?? new Int32(0), arg, (x, y) => x * y, (x, y) => x * y)); break;
      case '$min': case '$max': {
        const cur = getField(doc, path);
        const c = cur === undefined ? 0 : compareValues(arg, cur);
        if (cur === undefined || (op === '$min' ? c < 0 : c > 0)) setField(doc, path, arg);
        break;
      }
      case '$push': arrayField(doc, path).push(...eachValues(arg)); break;
      case '$addToSet': {
        const arr = arrayField(doc, path);
        for (const v of eachValues(arg)) if (!arr.some((e) => valuesEqual(e, v))) arr.push(v);
        break;
      }
      case '$pull': {
        const cur = getField(doc, path);
        if (!Array.isArray(cur)) break;
        const keep = cur.filter((e) => (isPlainObject(arg) && isPlainObject(e) ? !matchesFilter(e, arg) : !matchesFilter({ v: e }, { v: arg })));
        setField(doc, path, keep);
        break;
      }
      case '$rename': {
        const cur = getField(doc, path);
        if (cur === undefined) break;
        if (typeof arg !== 'string') throw badValue('$rename target must be a string');
        unsetField(doc, path);
        setField(doc, arg, cur);
        break;
      }
      case '$currentDate': setField(doc, path, new Date()); break;
      default: throw new UnsupportedError(`update operator ${op}`, 9, 'FailedToParse');
    }
  }
}

/** Keeps `_id` first, as mongod stores it. */
function idFirst(doc: Document, id: BsonValue): Document {
  const { _id: _ignored, ...rest } = doc;
  return id === undefined ? rest : { _id: id, ...rest };
}

/**
 * Returns the updated copy of `doc` (which is not mutated). A replacement
 * keeps the original `_id`; changing it fails with ImmutableField (66).
 */
export function applyUpdate(doc: Document, u: BsonValue, isInsert = false): Document {
  if (Array.isArray(u)) throw new UnsupportedError('pipeline-style update');
  if (!isPlainObject(u)) throw badValue('update must be an object');
  if (!isOperatorUpdate(u)) {
    if ('_id' in u && '_id' in doc && !valuesEqual(u._id, doc._id)) {
      throw new CommandError(66, 'ImmutableField', "After applying the update, the (immutable) field '_id' was found to have been altered");
    }
    return idFirst(u, doc._id ?? u._id);
  }
  const copy = structuredCloneDoc(doc);
  for (const [op, args] of Object.entries(u)) {
    if (!isPlainObject(args)) throw badValue(`Modifiers operate on fields but we found another type instead: ${op}`);
    applyOperator(copy, op, args, isInsert);
  }
  return idFirst(copy, copy._id);
}

/** Deep copy of plain objects/arrays; BSON wrapper values are shared (immutable). */
function structuredCloneDoc<T extends BsonValue>(v: T): T {
  if (Array.isArray(v)) return v.map((e) => structuredCloneDoc(e)) as T;
  if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, structuredCloneDoc(e)])) as T;
  return v;
}

/** Base document of an upsert: equality fields of the query (`{a: 1}`, `{a: {$eq: 1}}`). */
function upsertSeed(q: Document): Document {
  const seed: Document = {};
  for (const [k, v] of Object.entries(q)) {
    if (k.startsWith('$')) continue;
    if (isPlainObject(v) && Object.keys(v).some((x) => x.startsWith('$'))) {
      if ('$eq' in v) setField(seed, k, v.$eq);
      continue;
    }
    setField(seed, k, v);
  }
  return seed;
}

/** The document an upsert inserts, `_id` first (a new ObjectId when none is given). */
export function upsertDocument(q: Document, u: BsonValue): Document {
  const seed = upsertSeed(q);
  const doc = isPlainObject(u) && !isOperatorUpdate(u) ? idFirst(u, u._id ?? seed._id) : applyUpdate(seed, u, true);
  return idFirst(doc, doc._id ?? new ObjectId());
}
