/**
 * Read and write commands: find/getMore/killCursors, count/distinct,
 * insert/update/delete and findAndModify.
 */
import { Int32, Long, type Document } from 'bson';
import {
  boolArg, collectionArg, cursorIdArg, dbOf, docArg, numberArg, OK, rawDocuments, writeStatements,
  type Handler,
} from './context.js';
import { badValue, CommandError } from './errors.js';
import { isEmptyFilter, matchesFilter, projector, sortComparator } from './query.js';
import { decodeDoc, DuplicateKeyError, encodeDoc, type Collection, type StoredDoc } from './store.js';
import { applyUpdate, upsertDocument } from './update.js';
import type { BsonValue } from './values.js';
import { valuesEqual } from './values.js';

/** A matching document; `doc` is the decoded form when it was needed. */
interface Selected {
  stored: StoredDoc;
  doc?: Document;
}

/**
 * Documents of `coll` matching `filter`, sorted by `sort` (natural order
 * otherwise). Documents are only decoded when filtering or sorting needs it.
 */
export function select(coll: Collection | undefined, filter?: Document, sort?: Document): Selected[] {
  if (!coll) return [];
  const all = coll.all();
  const needsDecode = !isEmptyFilter(filter) || (sort !== undefined && Object.keys(sort).length > 0);
  if (!needsDecode) return all.map((stored) => ({ stored }));
  const matched: Required<Selected>[] = [];
  for (const stored of all) {
    const doc = decodeDoc(stored.raw);
    if (matchesFilter(doc, filter)) matched.push({ stored, doc });
  }
  if (sort && Object.keys(sort).length > 0) {
    const cmp = sortComparator(sort);
    matched.sort((a, b) => cmp(a.doc, b.doc));
  }
  return matched;
}

function window<T>(items: T[], skip: number | undefined, limit: number | undefined): T[] {
  const start = Math.max(skip ?? 0, 0);
  const n = Math.abs(limit ?? 0);
  return n > 0 ? items.slice(start, start + n) : items.slice(start);
}

const find: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const name = collectionArg(cmd.body, 'find');
  const b = cmd.body;
  const limit = numberArg(b.limit);
  const selected = window(select(ctx.store.get(db, name), docArg(b.filter, 'filter'), docArg(b.sort, 'sort')), numberArg(b.skip), limit);
  const project = projector(docArg(b.projection, 'projection'));
  const docs = selected.map((s) => (project ? encodeDoc(project(s.doc ?? decodeDoc(s.stored.raw))) : s.stored.raw));
  const singleBatch = boolArg(b.singleBatch, false) || (limit !== undefined && limit < 0);
  return ctx.cursors.first(`${db}.${name}`, docs, numberArg(b.batchSize), singleBatch);
};

const getMore: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const collection = cmd.body.collection;
  if (typeof collection !== 'string') throw badValue("getMore needs a 'collection' string");
  return ctx.cursors.more(cursorIdArg(cmd.body.getMore), `${db}.${collection}`, numberArg(cmd.body.batchSize));
};

const killCursors: Handler = (cmd, ctx) => {
  const ids: unknown = cmd.body.cursors;
  if (!Array.isArray(ids)) throw badValue("killCursors needs a 'cursors' array");
  const { killed, notFound } = ctx.cursors.kill(ids.map(cursorIdArg));
  const asLongs = (xs: bigint[]): Long[] => xs.map((x) => Long.fromBigInt(x));
  return { cursorsKilled: asLongs(killed), cursorsNotFound: asLongs(notFound), cursorsAlive: [], cursorsUnknown: [], ok: OK };
};

const count: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const coll = ctx.store.get(db, collectionArg(cmd.body, 'count'));
  const query = docArg(cmd.body.query, 'query');
  const total = isEmptyFilter(query) ? (coll?.count ?? 0) : select(coll, query).length;
  const skip = Math.max(numberArg(cmd.body.skip) ?? 0, 0);
  const limit = Math.abs(numberArg(cmd.body.limit) ?? 0);
  const n = Math.max(total - skip, 0);
  return { n: new Int32(limit > 0 ? Math.min(n, limit) : n), ok: OK };
};

const distinct: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const key = cmd.body.key;
  if (typeof key !== 'string') throw badValue("distinct needs a 'key' string");
  const values: BsonValue[] = [];
  for (const s of select(ctx.store.get(db, collectionArg(cmd.body, 'distinct')), docArg(cmd.body.query, 'query'))) {
    const doc = s.doc ?? decodeDoc(s.stored.raw);
    const found = key.split('.').reduce<BsonValue>((v, part) => (v && typeof v === 'object' ? (v as Document)[part] : undefined), doc);
    for (const v of Array.isArray(found) ? found : [found]) {
      if (v !== undefined && !values.some((x) => valuesEqual(x, v))) values.push(v);
    }
  }
  return { values, ok: OK };
};

interface WriteError {
  index: Int32;
  code: Int32;
  errmsg: string;
  keyPattern?: Document;
  keyValue?: Document;
}

/** Converts a per-statement failure into a `writeErrors` entry (rethrows non-command errors). */
function writeError(index: number, err: unknown): WriteError {
  if (!(err instanceof CommandError)) throw err;
  const base = { index: new Int32(index), code: new Int32(err.code), errmsg: err.message };
  return err instanceof DuplicateKeyError ? { ...base, keyPattern: { _id: new Int32(1) }, keyValue: err.keyValue } : base;
}

/** Runs statements in order, collecting write errors; ordered writes stop at the first error. */
function runStatements<T>(items: T[], ordered: boolean, run: (item: T, index: number) => void): WriteError[] {
  const errors: WriteError[] = [];
  for (let i = 0; i < items.length; i++) {
    try {
      run(items[i] as T, i);
    } catch (err) {
      errors.push(writeError(i, err));
      if (ordered) break;
    }
  }
  return errors;
}

function writeReply(n: number, errors: WriteError[], extra: Document = {}): Document {
  return { n: new Int32(n), ...extra, ...(errors.length > 0 ? { writeErrors: errors } : {}), ok: OK };
}

const insert: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const docs = rawDocuments(cmd);
  const { coll } = ctx.store.ensure(db, collectionArg(cmd.body, 'insert'));
  let n = 0;
  const errors = runStatements(docs, boolArg(cmd.body.ordered, true), (raw) => {
    coll.insert(raw);
    n++;
  });
  return writeReply(n, errors);
};

const update: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const name = collectionArg(cmd.body, 'update');
  let n = 0;
  let nModified = 0;
  const upserted: Document[] = [];
  const errors = runStatements(writeStatements(cmd, 'updates'), boolArg(cmd.body.ordered, true), (stmt, index) => {
    const q = docArg(stmt.q, 'q') ?? {};
    const targets = select(ctx.store.get(db, name), q);
    const chosen = boolArg(stmt.multi, false) ? targets : targets.slice(0, 1);
    if (chosen.length === 0 && boolArg(stmt.upsert, false)) {
      const doc = upsertDocument(q, stmt.u);
      ctx.store.ensure(db, name).coll.insert(encodeDoc(doc));
      n++;
      upserted.push({ index: new Int32(index), _id: doc._id });
      return;
    }
    const coll = ctx.store.get(db, name);
    for (const t of chosen) {
      const before = t.doc ?? decodeDoc(t.stored.raw);
      const after = applyUpdate(before, stmt.u);
      n++;
      const raw = encodeDoc(after);
      if (!raw.equals(t.stored.raw)) {
        coll?.replace(t.stored, after);
        nModified++;
      }
    }
  });
  return writeReply(n, errors, { nModified: new Int32(nModified), ...(upserted.length > 0 ? { upserted } : {}) });
};

const deleteCmd: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const name = collectionArg(cmd.body, 'delete');
  let n = 0;
  const errors = runStatements(writeStatements(cmd, 'deletes'), boolArg(cmd.body.ordered, true), (stmt) => {
    const coll = ctx.store.get(db, name);
    const targets = select(coll, docArg(stmt.q, 'q'));
    const chosen = (numberArg(stmt.limit) ?? 0) === 1 ? targets.slice(0, 1) : targets;
    coll?.remove(new Set(chosen.map((t) => t.stored)));
    n += chosen.length;
  });
  return writeReply(n, errors);
};

/** findAndModify: one document, optional sort/upsert/remove/new/fields. */
const findAndModify: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const b = cmd.body;
  const name = collectionArg(b, 'findAndModify');
  const q = docArg(b.query, 'query') ?? {};
  const target = select(ctx.store.get(db, name), q, docArg(b.sort, 'sort'))[0];
  const project = projector(docArg(b.fields, 'fields')) ?? ((d: Document) => d);
  if (!target) {
    if (!boolArg(b.upsert, false) || boolArg(b.remove, false)) return { lastErrorObject: { n: new Int32(0), updatedExisting: false }, value: null, ok: OK };
    const doc = upsertDocument(q, b.update);
    ctx.store.ensure(db, name).coll.insert(encodeDoc(doc));
    const value = boolArg(b.new, false) ? project(doc) : null;
    return { lastErrorObject: { n: new Int32(1), updatedExisting: false, upserted: doc._id }, value, ok: OK };
  }
  const coll = ctx.store.get(db, name) as Collection;
  const before = target.doc ?? decodeDoc(target.stored.raw);
  if (boolArg(b.remove, false)) {
    coll.remove(new Set([target.stored]));
    return { lastErrorObject: { n: new Int32(1) }, value: project(before), ok: OK };
  }
  const after = applyUpdate(before, b.update);
  coll.replace(target.stored, after);
  return { lastErrorObject: { n: new Int32(1), updatedExisting: true }, value: project(boolArg(b.new, false) ? after : before), ok: OK };
};

/** CRUD command handlers by command name. */
export const crudCommands: Record<string, Handler> = {
  find,
  getMore,
  killCursors,
  count,
  distinct,
  insert,
  update,
  delete: deleteCmd,
  findAndModify,
  findandmodify: (cmd, ctx) => findAndModify({ ...cmd, body: { ...cmd.body, findAndModify: cmd.body.findandmodify } }, ctx),
};
