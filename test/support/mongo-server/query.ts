/**
 * Query language subset: filter matching, projection and sort over
 * documents decoded with EXACT_DECODE.
 */
import type { Document } from 'bson';
import { CommandError, UnsupportedError } from './errors.js';
import { compareValues, isPlainObject, toNumber, typeRank, valuesEqual, type BsonValue } from './values.js';

/**
 * Values reached by a dotted path. Arrays met on the way are traversed
 * (`a.b` reaches `b` in every element of array `a`) and numeric parts index
 * into arrays. An empty result means the field is missing.
 */
export function resolvePath(value: BsonValue, parts: readonly string[]): BsonValue[] {
  if (parts.length === 0) return [value];
  const [head, ...rest] = parts as [string, ...string[]];
  if (Array.isArray(value)) {
    const out: BsonValue[] = [];
    if (/^\d+$/.test(head) && Number(head) < value.length) out.push(...resolvePath(value[Number(head)], rest));
    for (const el of value) if (isPlainObject(el)) out.push(...resolvePath(el, parts));
    return out;
  }
  if (isPlainObject(value) && Object.prototype.hasOwnProperty.call(value, head)) return resolvePath(value[head], rest);
  return [];
}

/** Candidates plus the elements of candidate arrays (leaf array semantics). */
function expand(values: readonly BsonValue[]): BsonValue[] {
  return values.flatMap((v) => (Array.isArray(v) ? [v, ...v] : [v]));
}

function isRegex(v: BsonValue): v is { pattern: string; options: string } {
  return v !== null && typeof v === 'object' && (v as { _bsontype?: string })._bsontype === 'BSONRegExp';
}

function toJsRegExp(pattern: string, options: string): RegExp {
  const flags = [...options].filter((f) => 'ims'.includes(f)).join('');
  return new RegExp(pattern, flags);
}

function regexMatches(candidates: readonly BsonValue[], re: RegExp): boolean {
  return expand(candidates).some((c) => typeof c === 'string' && re.test(c));
}

/** `{field: value}` equality: null also matches a missing field; arrays match by element. */
function equalsAny(candidates: readonly BsonValue[], target: BsonValue): boolean {
  if (isRegex(target)) {
    return regexMatches(candidates, toJsRegExp(target.pattern, target.options)) || expand(candidates).some((c) => valuesEqual(c, target));
  }
  if (target === null && candidates.length === 0) return true;
  return expand(candidates).some((c) => valuesEqual(c, target) || (target === null && c === undefined));
}

/** Range comparison with type bracketing: only values of the same canonical type compare. */
function compareAny(candidates: readonly BsonValue[], target: BsonValue, ok: (c: number) => boolean): boolean {
  return expand(candidates).some((c) => typeRank(c) === typeRank(target) && ok(compareValues(c, target)));
}

function asArray(op: string, v: BsonValue): BsonValue[] {
  if (!Array.isArray(v)) throw new CommandError(2, 'BadValue', `${op} needs an array`);
  return v;
}

function truthy(v: BsonValue): boolean {
  if (typeof v === 'boolean') return v;
  if (v === null || v === undefined) return false;
  return typeRank(v) === 3 ? toNumber(v) !== 0 : true;
}

/** Applies one `$op: operand` to the candidates reached by a path. */
function matchOperator(candidates: readonly BsonValue[], op: string, operand: BsonValue, expr: Document): boolean {
  switch (op) {
    case '$eq': return equalsAny(candidates, operand);
    case '$ne': return !equalsAny(candidates, operand);
    case '$gt': return compareAny(candidates, operand, (c) => c > 0);
    case '$gte': return compareAny(candidates, operand, (c) => c >= 0);
    case '$lt': return compareAny(candidates, operand, (c) => c < 0);
    case '$lte': return compareAny(candidates, operand, (c) => c <= 0);
    case '$in': return asArray(op, operand).some((t) => equalsAny(candidates, t));
    case '$nin': return !asArray(op, operand).some((t) => equalsAny(candidates, t));
    case '$exists': return (candidates.length > 0) === truthy(operand);
    case '$not': return !matchValue(candidates, operand);
    case '$all': return asArray(op, operand).every((t) => equalsAny(candidates, t));
    case '$size': return candidates.some((c) => Array.isArray(c) && c.length === toNumber(operand));
    case '$elemMatch':
      return candidates.some((c) => Array.isArray(c) && c.some((el) => (isPlainObject(el) && matchesFilter(el, operand as Document)) || matchValue([el], operand)));
    case '$regex': {
      const options = typeof expr.$options === 'string' ? expr.$options : isRegex(operand) ? operand.options : '';
      const pattern = isRegex(operand) ? operand.pattern : String(operand);
      return regexMatches(candidates, toJsRegExp(pattern, options));
    }
    case '$options': return true;
    case '$comment': return true;
    default: throw new UnsupportedError(`query operator ${op}`);
  }
}

function isOperatorDoc(v: BsonValue): v is Document {
  if (!isPlainObject(v)) return false;
  const first = Object.keys(v)[0];
  return first !== undefined && first.startsWith('$');
}

/** Matches candidates against a field condition: an operator document or a literal. */
function matchValue(candidates: readonly BsonValue[], cond: BsonValue): boolean {
  if (isOperatorDoc(cond)) return Object.entries(cond).every(([op, operand]) => matchOperator(candidates, op, operand, cond));
  return equalsAny(candidates, cond);
}

/** True when `doc` satisfies the filter. An empty/absent filter matches all. */
export function matchesFilter(doc: Document, filter: Document | undefined): boolean {
  if (!filter) return true;
  for (const [key, cond] of Object.entries(filter)) {
    if (key === '$and') { if (!asArray(key, cond).every((f) => matchesFilter(doc, f as Document))) return false; continue; }
    if (key === '$or') { if (!asArray(key, cond).some((f) => matchesFilter(doc, f as Document))) return false; continue; }
    if (key === '$nor') { if (asArray(key, cond).some((f) => matchesFilter(doc, f as Document))) return false; continue; }
    if (key === '$comment') continue;
    if (key.startsWith('$')) throw new UnsupportedError(`top-level query operator ${key}`);
    if (!matchValue(resolvePath(doc, key.split('.')), cond)) return false;
  }
  return true;
}

/** Every filter with no conditions (so raw documents can be returned without decoding). */
export function isEmptyFilter(filter: Document | undefined): boolean {
  return !filter || Object.keys(filter).length === 0;
}

/** Sort key for one field: smallest (ascending) or largest (descending) reachable value. */
function sortKey(doc: Document, path: string, dir: number): BsonValue {
  const values = expand(resolvePath(doc, path.split('.'))).filter((v) => !Array.isArray(v) || v.length === 0);
  if (values.length === 0) return null;
  return values.reduce((best, v) => (compareValues(v, best) * dir < 0 ? v : best));
}

/** Returns a comparator for a sort spec like `{a: 1, b: -1}` (stable when used with Array#sort). */
export function sortComparator(spec: Document): (a: Document, b: Document) => number {
  const fields = Object.entries(spec).map(([path, dir]) => {
    if (isPlainObject(dir)) throw new UnsupportedError(`sort option for ${path}`);
    return { path, dir: toNumber(dir) < 0 ? -1 : 1 };
  });
  return (a, b) => {
    for (const { path, dir } of fields) {
      const c = compareValues(sortKey(a, path, dir), sortKey(b, path, dir));
      if (c !== 0) return c * dir;
    }
    return 0;
  };
}

type ProjectionTree = Map<string, ProjectionTree | true>;

function buildTree(paths: readonly string[]): ProjectionTree {
  const root: ProjectionTree = new Map();
  for (const path of paths) {
    const parts = path.split('.');
    let node = root;
    parts.forEach((part, i) => {
      if (i === parts.length - 1) { node.set(part, true); return; }
      const next = node.get(part);
      if (next instanceof Map) { node = next; return; }
      if (next === true) return;
      const child: ProjectionTree = new Map();
      node.set(part, child);
      node = child;
    });
  }
  return root;
}

function include(value: BsonValue, tree: ProjectionTree): BsonValue {
  if (Array.isArray(value)) return value.filter((el) => isPlainObject(el) || Array.isArray(el)).map((el) => include(el, tree));
  if (!isPlainObject(value)) return undefined;
  const out: Document = {};
  for (const [key, v] of Object.entries(value)) {
    const node = tree.get(key);
    if (node === true) out[key] = v;
    else if (node) { const sub = include(v, node); if (sub !== undefined) out[key] = sub; }
  }
  return out;
}

function exclude(value: BsonValue, tree: ProjectionTree): BsonValue {
  if (Array.isArray(value)) return value.map((el) => (isPlainObject(el) || Array.isArray(el) ? exclude(el, tree) : el));
  if (!isPlainObject(value)) return value;
  const out: Document = {};
  for (const [key, v] of Object.entries(value)) {
    const node = tree.get(key);
    if (node === true) continue;
    out[key] = node ? exclude(v, node) : v;
  }
  return out;
}

/**
 * Applies an inclusion or exclusion projection (`_id` included unless
 * excluded). Returns undefined when the projection is empty (no change).
 */
export function projector(projection: Document | undefined): ((doc: Document) => Document) | undefined {
  if (!projection || Object.keys(projection).length === 0) return undefined;
  const entries = Object.entries(projection);
  for (const [path, v] of entries) {
    if (isPlainObject(v) || typeof v === 'string') throw new UnsupportedError(`projection operator for ${path}`);
  }
  const idExcluded = entries.some(([p, v]) => p === '_id' && !truthy(v));
  const others = entries.filter(([p]) => p !== '_id');
  const inclusive = others.length > 0 ? truthy(others[0]?.[1]) : !idExcluded;
  if (others.some(([, v]) => truthy(v) !== inclusive)) throw new CommandError(31254, 'Location31254', 'cannot mix inclusion and exclusion in a projection');
  if (inclusive) {
    const tree = buildTree([...others.map(([p]) => p), ...(idExcluded ? [] : ['_id'])]);
    return (doc) => include(doc, tree) as Document;
  }
  const tree = buildTree([...others.map(([p]) => p), ...(idExcluded ? ['_id'] : [])]);
  return (doc) => exclude(doc, tree) as Document;
}
