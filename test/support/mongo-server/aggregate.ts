/**
 * `aggregate` with a small pipeline subset: $match, $sort, $skip, $limit,
 * $project, $count, $group (accumulators $sum/$avg/$min/$max/$first/$last/
 * $push), and $collStats as the first stage. Other stages fail with a clear
 * error naming the stage.
 */
import { Double, Int32, Long, type Document } from 'bson';
import { storageStats } from './catalog-commands.js';
import { cursorBatchSize, dbOf, type CommandContext, type Handler } from './context.js';
import { badValue, CommandError, UnsupportedError } from './errors.js';
import { matchesFilter, projector, resolvePath, sortComparator } from './query.js';
import { decodeDoc, encodeDoc } from './store.js';
import { compareValues, isNumeric, isPlainObject, numericValue, valueKey, type BsonValue } from './values.js';
import { select } from './crud-commands.js';

/** Evaluates a group-key/accumulator expression: `'$path'`, a literal, or an object of those. */
function evaluate(expr: BsonValue, doc: Document): BsonValue {
  if (typeof expr === 'string' && expr.startsWith('$')) {
    const values = resolvePath(doc, expr.slice(1).split('.'));
    return values.length === 0 ? undefined : values.length === 1 ? values[0] : values;
  }
  if (isPlainObject(expr)) {
    const keys = Object.keys(expr);
    if (keys.some((k) => k.startsWith('$'))) throw new UnsupportedError(`expression operator ${keys.join(', ')}`);
    return Object.fromEntries(keys.map((k) => [k, evaluate(expr[k], doc)]));
  }
  return expr;
}

/** Sums numbers with mongod's result typing: Int32 while it fits, then Long, Double if any double. */
function sumValues(values: BsonValue[]): BsonValue {
  let int = 0n;
  let float = 0;
  let sawDouble = false;
  let sawLong = false;
  for (const v of values) {
    if (!isNumeric(v)) continue;
    const n = numericValue(v);
    if (typeof n === 'bigint') int += n; else { float += n; sawDouble = true; }
    if (v instanceof Long) sawLong = true;
  }
  if (sawDouble) return new Double(float + Number(int));
  if (!sawLong && int >= -2147483648n && int <= 2147483647n) return new Int32(Number(int));
  return Long.fromBigInt(int);
}

function accumulate(op: string, values: BsonValue[]): BsonValue {
  const present = values.filter((v) => v !== undefined);
  switch (op) {
    case '$sum': return sumValues(present);
    case '$avg': {
      const nums = present.filter(isNumeric);
      return nums.length ? new Double(nums.reduce<number>((s, v) => s + Number(numericValue(v)), 0) / nums.length) : null;
    }
    case '$min': return present.length ? present.reduce((a, b) => (compareValues(b, a) < 0 ? b : a)) : null;
    case '$max': return present.length ? present.reduce((a, b) => (compareValues(b, a) > 0 ? b : a)) : null;
    case '$first': return values.length ? values[0] ?? null : null;
    case '$last': return values.length ? values[values.length - 1] ?? null : null;
    case '$push': return present;
    default: throw new UnsupportedError(`$group accumulator ${op}`);
  }
}

/** `$group`: buckets by `_id` expression (first-seen order) and applies accumulators. */
function group(docs: Document[], spec: Document): Document[] {
  const { _id: idExpr, ...fields } = spec;
  const buckets = new Map<string, { id: BsonValue; members: Document[] }>();
  for (const doc of docs) {
    const id = evaluate(idExpr, doc) ?? null;
    const key = valueKey(id);
    const bucket = buckets.get(key) ?? { id, members: [] };
    bucket.members.push(doc);
    buckets.set(key, bucket);
  }
  return [...buckets.values()].map(({ id, members }) => {
    const out: Document = { _id: id };
    for (const [name, acc] of Object.entries(fields)) {
      if (!isPlainObject(acc) || Object.keys(acc).length !== 1) throw badValue(`invalid accumulator for field ${name}`);
      const [op, arg] = Object.entries(acc)[0] as [string, BsonValue];
      out[name] = accumulate(op, members.map((m) => evaluate(arg, m)));
    }
    return out;
  });
}

/** The single document produced by `$collStats`. */
function collStatsStage(ctx: CommandContext, db: string, name: string, spec: Document): Document {
  const coll = ctx.store.get(db, name);
  if (!coll) throw new CommandError(26, 'NamespaceNotFound', `Unable to retrieve storageStats in $collStats stage :: caused by :: Collection [${db}.${name}] not found.`);
  const stats = storageStats(coll);
  const out: Document = { ns: `${db}.${name}`, host: 'localhost', localTime: new Date() };
  if (spec.storageStats !== undefined) out.storageStats = stats;
  if (spec.count !== undefined) out.count = stats.count;
  if (spec.latencyStats !== undefined) out.latencyStats = {};
  return out;
}

/** Applies one stage to the current documents. */
function applyStage(docs: Document[], stage: Document): Document[] {
  const [name, arg] = Object.entries(stage)[0] ?? [];
  switch (name) {
    case '$match': return docs.filter((d) => matchesFilter(d, arg as Document));
    case '$sort': return [...docs].sort(sortComparator(arg as Document));
    case '$skip': return docs.slice(Number(numericValue(arg)));
    case '$limit': return docs.slice(0, Number(numericValue(arg)));
    case '$project': {
      const project = projector(arg as Document);
      return project ? docs.map(project) : docs;
    }
    case '$count': return docs.length ? [{ [String(arg)]: new Int32(docs.length) }] : [];
    case '$group': return group(docs, arg as Document);
    default: throw new UnsupportedError(`pipeline stage '${String(name)}'`, 40324, 'Location40324');
  }
}

/** Runs a pipeline against a collection; returns the result documents encoded. */
function runPipeline(ctx: CommandContext, db: string, name: string, pipeline: Document[]): Buffer[] {
  const [head, ...rest] = pipeline;
  let docs: Document[];
  let stages = pipeline;
  if (head && isPlainObject(head.$collStats)) {
    docs = [collStatsStage(ctx, db, name, head.$collStats)];
    stages = rest;
  } else if (head && isPlainObject(head.$match)) {
    docs = select(ctx.store.get(db, name), head.$match).map((s) => s.doc ?? decodeDoc(s.stored.raw));
    stages = rest;
  } else {
    docs = select(ctx.store.get(db, name)).map((s) => decodeDoc(s.stored.raw));
  }
  for (const stage of stages) docs = applyStage(docs, stage);
  return docs.map(encodeDoc);
}

export const aggregate: Handler = (cmd, ctx) => {
  const db = dbOf(cmd.body);
  const name = cmd.body.aggregate;
  if (typeof name !== 'string') throw new UnsupportedError('collection-less aggregate');
  const pipeline: unknown = cmd.body.pipeline;
  if (!Array.isArray(pipeline) || !pipeline.every(isPlainObject)) throw badValue("'pipeline' must be an array of objects");
  if (cmd.body.explain !== undefined) throw new UnsupportedError('explain');
  const docs = runPipeline(ctx, db, name, pipeline);
  return ctx.cursors.first(`${db}.${name}`, docs, cursorBatchSize(cmd.body));
};

