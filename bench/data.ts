/**
 * The data sets the benchmark runs on:
 *   PostgreSQL  pgbench's tables (`pgbench -i -s <scale>`) plus `docs`: rows of ~1 KB of text and a
 *               jsonb document, in a database `bench` of the throwaway cluster
 *   SQLite      a file in rollback-journal mode: `notes` (text) and `attachments` (blobs)
 *   MongoDB     customers, orders and events with mixed BSON types, on the in-memory test server
 *   list        a storage folder holding N backups, made from one real backup's sidecar and archive
 *   tree        a folder of many files (half text, half random bytes, as uploads are) and a change
 *               to some of them, for the incremental pair
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { PgServer } from '../test/support/postgres.js';

export type Log = (line: string) => void;

// ---------------------------------------------------------------------------------------------
// PostgreSQL

export const PG_DATABASE = 'bench';

export interface PgData {
  database: string;
  scale: number;
  docs: number;
  /** pg_database_size after VACUUM ANALYZE */
  bytes: number;
  version: string;
  dumpVersion: string;
}

/** pg-restore-mid's database: the same data at about a third of the size. */
export const PG_MID_DATABASE = 'bench_mid';

export function pgEnv(pg: PgServer, database = PG_DATABASE): Record<string, string> {
  return { PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: pg.user, PGPASSWORD: pg.password, PGDATABASE: database };
}

export function pgTool(pg: PgServer, name: string): string {
  const inBin = path.join(pg.binDir, name);
  return existsSync(inBin) ? inBin : name;
}

export function psql(pg: PgServer, sql: string, database = PG_DATABASE): string {
  try {
    return execFileSync(pgTool(pg, 'psql'), ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', database, '-c', sql], {
      env: { ...process.env, ...pgEnv(pg) },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 << 20,
    }).trim();
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    const head = sql.trim().split('\n')[0]!.slice(0, 80);
    throw new Error(`psql failed on "${head}...": ${stderr || (error as Error).message}`);
  }
}

const WORDS = (
  'the of and to in is was for on that with as by at from this be are or an it which not have has were ' +
  'order invoice customer payment shipment warehouse product price quantity discount total account balance ' +
  'report quarter revenue region manager employee contract supplier delivery status pending shipped returned ' +
  'refund credit debit ledger entry journal audit review approval request ticket issue priority resolved ' +
  'network server database backup restore archive snapshot replica cluster node latency throughput storage ' +
  'volume partition index table column schema query transaction commit rollback lock vacuum checkpoint ' +
  'morning evening weekend holiday meeting schedule calendar reminder deadline project milestone budget ' +
  'forecast analysis summary detail note comment feedback rating survey campaign newsletter subscriber ' +
  'london paris berlin madrid rome vienna prague warsaw lisbon dublin oslo helsinki athens budapest zurich ' +
  'red green blue yellow orange purple black white silver golden large small medium heavy light quick slow ' +
  'alpha beta gamma delta epsilon zeta theta kappa lambda sigma omega vector matrix tensor scalar integer ' +
  'coffee tea water bread cheese apple banana cherry grape lemon mango olive pepper tomato potato carrot'
).split(' ');

/** pgbench's tables at `scale`, plus `docs` with `docs` rows; returns the database's size. */
export function buildPostgres(pg: PgServer, options: { scale: number; docs: number }, log: Log, database = PG_DATABASE): PgData {
  psql(pg, `CREATE DATABASE ${database}`, 'postgres');
  log(`pgbench -i -s ${options.scale}`);
  execFileSync(pgTool(pg, 'pgbench'), ['-i', '-q', '-s', String(options.scale), database], {
    env: { ...process.env, ...pgEnv(pg, database) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  log(`docs: ${options.docs} rows of text and jsonb`);
  const words = `ARRAY[${WORDS.map((w) => `'${w}'`).join(',')}]`;
  const n = WORDS.length;
  // A vocabulary of 4,096 words (the list above, then pseudo-words cut from md5 sums), so that the
  // text compresses about as well as prose does; a pool of 5,000 random paragraphs (~400 bytes
  // each) of it; each row joins three paragraphs and a unique tail, so that rows differ and
  // repeats are further apart than gzip's 32 KB window.
  psql(
    pg,
    `
    CREATE TABLE vocab AS
      SELECT i AS id, CASE WHEN i <= ${n} THEN (${words})[i] ELSE substr(md5(i::text), 1 + i % 5, 3 + i % 8) END AS w
      FROM generate_series(1, 4096) i;
    CREATE TABLE paragraphs AS
      WITH v AS (SELECT array_agg(w ORDER BY id) AS a FROM vocab)
      SELECT p AS id,
             (SELECT string_agg(v.a[k.r], ' ')
              FROM (SELECT 1 + floor(random() * 4096)::int AS r FROM generate_series(1, 50 + p % 7) WHERE p >= 0) k) AS body
      FROM generate_series(0, 4999) p, v;
    CREATE TABLE docs (
      id bigint PRIMARY KEY,
      title text NOT NULL,
      body text NOT NULL,
      meta jsonb NOT NULL,
      created_at timestamptz NOT NULL
    );
    INSERT INTO docs
      SELECT g,
             initcap((${words})[1 + (g * 7) % ${n}] || ' ' || (${words})[1 + (g * 13) % ${n}] || ' ' || (${words})[1 + (g * 31) % ${n}]),
             a.body || E'\\n' || b.body || E'\\n' || c.body || E'\\n' || md5(g::text) || ' ' || md5((g * 17)::text),
             jsonb_build_object(
               'user', jsonb_build_object('id', (g * 7919) % 100000, 'name', 'user' || (g * 7919) % 100000,
                                          'email', 'user' || (g * 7919) % 100000 || '@example.com'),
               'tags', jsonb_build_array((${words})[1 + g % ${n}], (${words})[1 + (g * 3) % ${n}], (${words})[1 + (g * 11) % ${n}]),
               'score', round((random() * 100)::numeric, 2),
               'active', g % 3 = 0,
               'counts', jsonb_build_object('views', floor(random() * 10000)::int, 'likes', floor(random() * 500)::int),
               'items', (SELECT jsonb_agg(jsonb_build_object('sku', 'SKU-' || ((g + i) * 31) % 50000, 'qty', 1 + (g + i) % 5,
                                                           'price', ((g * i) % 10000) / 100.0))
                         FROM generate_series(1, 1 + g % 4) i)
             ),
             timestamptz '2024-01-01' + (g % 63072000) * interval '1 second'
      FROM generate_series(1::bigint, ${options.docs}) g
      JOIN paragraphs a ON a.id = (g * 7) % 5000
      JOIN paragraphs b ON b.id = (g * 101) % 5000
      JOIN paragraphs c ON c.id = (g * 1009) % 5000
      -- in id order: a hash join's order would put rows that share a paragraph side by side
      ORDER BY g;
    CREATE INDEX docs_created_at ON docs (created_at);
    CREATE INDEX docs_meta ON docs USING gin (meta jsonb_path_ops);
    DROP TABLE paragraphs;
    DROP TABLE vocab;
    `,
    database,
  );
  log('VACUUM ANALYZE');
  psql(pg, 'VACUUM ANALYZE', database);
  const bytes = Number(psql(pg, `SELECT pg_database_size('${database}')`, database));
  const version = psql(pg, 'SHOW server_version', database);
  const dumpVersion = execFileSync(pgTool(pg, 'pg_dump'), ['--version'], { encoding: 'utf8' }).trim();
  return { database, scale: options.scale, docs: options.docs, bytes, version, dumpVersion };
}

// ---------------------------------------------------------------------------------------------
// SQLite

export interface SqliteData {
  file: string;
  bytes: number;
  notes: number;
  attachments: number;
  version: string;
}

/** xorshift32: fast, deterministic word picks (crypto randomness is not needed for text). */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/**
 * A SQLite database of about `targetBytes` in rollback-journal mode (SQLite's default): notes of
 * 0.5-3 KB of words, and attachments of 2-16 KB (half random bytes, half repetitive text).
 */
export function buildSqlite(file: string, targetBytes: number, log: Log): SqliteData {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = DELETE');
    db.pragma('synchronous = OFF');
    db.exec(`
      CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL, tags TEXT, created_at TEXT NOT NULL);
      CREATE TABLE attachments (id INTEGER PRIMARY KEY, note_id INTEGER NOT NULL REFERENCES notes(id), name TEXT NOT NULL,
                                mime TEXT NOT NULL, data BLOB NOT NULL);
      CREATE INDEX notes_created_at ON notes (created_at);
      CREATE INDEX attachments_note_id ON attachments (note_id);
    `);
    const insertNote = db.prepare('INSERT INTO notes (id, title, body, tags, created_at) VALUES (?, ?, ?, ?, ?)');
    const insertAttachment = db.prepare('INSERT INTO attachments (note_id, name, mime, data) VALUES (?, ?, ?, ?)');
    const rand = prng(0x5eed);
    const words = (count: number) => {
      const out: string[] = [];
      for (let i = 0; i < count; i++) out.push(WORDS[rand() % WORDS.length]!);
      return out.join(' ');
    };
    let notes = 0;
    let attachments = 0;
    const size = () => Number(db.pragma('page_count', { simple: true })) * Number(db.pragma('page_size', { simple: true }));
    const batch = db.transaction((rows: number) => {
      for (let i = 0; i < rows; i++) {
        notes++;
        const created = new Date(Date.UTC(2024, 0, 1) + (notes % 63_072_000) * 1000).toISOString();
        insertNote.run(notes, words(4 + (rand() % 6)), words(80 + (rand() % 400)), words(3), created);
        if (notes % 2 === 0) {
          attachments++;
          const n = 2048 + (rand() % 14_336);
          const data = attachments % 2 === 0 ? randomBytes(n) : Buffer.from(words(n / 6).slice(0, n));
          insertAttachment.run(notes, `file-${attachments}.bin`, attachments % 2 === 0 ? 'application/octet-stream' : 'text/plain', data);
        }
      }
    });
    let lastLog = 0;
    const rows = targetBytes < 64 << 20 ? 100 : 2000;
    while (size() < targetBytes) {
      batch(rows);
      const now = size();
      if (now - lastLog > 256 << 20) {
        log(`sqlite ${path.basename(file)}: ${(now / 2 ** 20).toFixed(0)} MiB`);
        lastLog = now;
      }
    }
    const version = String(db.prepare('SELECT sqlite_version() AS v').pluck().get());
    return { file, bytes: statSync(file).size, notes, attachments, version };
  } finally {
    db.close();
  }
}

/** A few rows: the real backup that the list storage is made of. */
export function buildTinySqlite(file: string): void {
  const db = new Database(file);
  try {
    db.exec(`
      CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
      CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, total REAL NOT NULL);
      INSERT INTO customers (name) VALUES ('Ada'), ('Grace'), ('Linus');
      INSERT INTO orders (customer_id, total) VALUES (1, 9.5), (2, 12.25), (3, 99.0), (1, 4.75);
    `);
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------------------------------------
// MongoDB

export const MONGO_DATABASE = 'bench';

export interface MongoData {
  database: string;
  documents: number;
  /** Sum of the documents' BSON sizes. */
  bytes: number;
  collections: Record<string, number>;
}

/** `documents` documents of mixed BSON types in customers (20%), orders (60%) and events (20%). */
export async function buildMongo(uri: string, documents: number, log: Log): Promise<MongoData> {
  const { MongoClient, ObjectId, Long, Decimal128, Binary, Double, Int32, BSON } = await import('mongodb');
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  await client.connect();
  try {
    const db = client.db(MONGO_DATABASE);
    const rand = prng(0xc0ffee);
    const words = (count: number) => {
      const out: string[] = [];
      for (let i = 0; i < count; i++) out.push(WORDS[rand() % WORDS.length]!);
      return out.join(' ');
    };
    const plan: [string, number][] = [
      ['customers', Math.round(documents * 0.2)],
      ['orders', Math.round(documents * 0.6)],
      ['events', documents - Math.round(documents * 0.2) - Math.round(documents * 0.6)],
    ];
    const collections: Record<string, number> = {};
    let bytes = 0;
    const base = Date.UTC(2024, 0, 1);
    for (const [name, count] of plan) {
      log(`mongo ${name}: ${count} documents`);
      const collection = db.collection(name);
      let batch: Record<string, unknown>[] = [];
      for (let i = 0; i < count; i++) {
        let doc: Record<string, unknown>;
        if (name === 'customers') {
          doc = {
            _id: new ObjectId(),
            customerNo: new Int32(i),
            name: words(2),
            email: `customer${i}@example.com`,
            createdAt: new Date(base + i * 60_000),
            balance: Decimal128.fromString(`${(rand() % 1_000_000) / 100}`),
            vip: i % 17 === 0,
            address: { street: words(3), city: words(1), zip: String(10000 + (rand() % 89999)), country: 'DE' },
            tags: [words(1), words(1)],
            notes: i % 5 === 0 ? null : words(20 + (rand() % 40)),
          };
        } else if (name === 'orders') {
          const items = Array.from({ length: 1 + (rand() % 5) }, () => ({
            sku: `SKU-${rand() % 50_000}`,
            qty: new Int32(1 + (rand() % 9)),
            price: new Double((rand() % 100_000) / 100),
          }));
          doc = {
            _id: new ObjectId(),
            orderNo: Long.fromNumber(10_000_000_000 + i),
            customerNo: new Int32(rand() % Math.max(1, Math.round(documents * 0.2))),
            placedAt: new Date(base + i * 30_000),
            status: ['pending', 'paid', 'shipped', 'returned'][rand() % 4],
            items,
            total: Decimal128.fromString(`${(rand() % 10_000_000) / 100}`),
            shipping: { method: ['post', 'courier', 'pickup'][rand() % 3], cost: new Double((rand() % 2000) / 100) },
            comment: words(10 + (rand() % 30)),
          };
        } else {
          doc = {
            _id: new ObjectId(),
            ts: new Date(base + i * 1000),
            kind: ['login', 'logout', 'view', 'click', 'purchase'][rand() % 5],
            seq: Long.fromNumber(i),
            payload: new Binary(randomBytes(64 + (rand() % 192))),
            session: new Binary(randomBytes(16), Binary.SUBTYPE_UUID),
            ua: words(6),
            metrics: { ms: new Double((rand() % 100_000) / 10), bytes: new Int32(rand() % 1_000_000) },
          };
        }
        bytes += BSON.calculateObjectSize(doc);
        batch.push(doc);
        if (batch.length === 1000) {
          await collection.insertMany(batch, { ordered: false });
          batch = [];
        }
      }
      if (batch.length > 0) await collection.insertMany(batch, { ordered: false });
      collections[name] = count;
    }
    await db.collection('customers').createIndex({ email: 1 });
    await db.collection('orders').createIndex({ customerNo: 1, placedAt: -1 });
    await db.collection('events').createIndex({ ts: -1 });
    return { database: MONGO_DATABASE, documents, bytes, collections };
  } finally {
    await client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// list: a storage folder with many backups

/**
 * Fills `storage` with `count` backups, copies of the one real backup in `template` (its sidecar
 * and archive), spread over four targets, one every hour going back from `newest`; ids, dates and
 * `archive.file` are rewritten, `archive.size` and `sha256` stay those of the (copied) archive.
 */
export function buildListStorage(template: string, storage: string, count: number, newest: Date): { targets: string[] } {
  const sidecarName = readdirSync(template).find((n) => n.endsWith('.json') && n !== 'history.jsonl');
  if (!sidecarName) throw new Error(`no sidecar in ${template}`);
  const sidecar = JSON.parse(readFileSync(path.join(template, sidecarName), 'utf8')) as {
    id: string;
    target: string;
    createdAt: string;
    finishedAt: string;
    durationMs: number;
    archive: { file: string; size: number; sha256: string };
  };
  const archive = path.join(template, sidecar.archive.file);
  if (statSync(archive).size !== sidecar.archive.size) throw new Error(`template archive ${archive} does not match its sidecar`);
  const targets = ['app', 'crm', 'shop', 'logs'];
  const stamp = (d: Date) => d.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '_');
  for (let i = 0; i < count; i++) {
    const target = targets[i % targets.length]!;
    const created = new Date(newest.getTime() - i * 3600_000 + (i % targets.length) * 1000);
    const id = `${target}_${stamp(created)}`;
    const doc = {
      ...sidecar,
      id,
      target,
      createdAt: created.toISOString(),
      finishedAt: new Date(created.getTime() + sidecar.durationMs).toISOString(),
      tags: i % 50 === 0 ? ['pre-restore'] : [],
      archive: { ...sidecar.archive, file: `${id}.zip` },
    };
    writeFileSync(path.join(storage, `${id}.json`), `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600 });
    copyFileSync(archive, path.join(storage, `${id}.zip`));
  }
  return { targets };
}

// ---------------------------------------------------------------------------------------------
// tree: a folder of many files

export interface TreeData {
  dir: string;
  files: string[];
  bytes: number;
}

/** The mtime every file of a built tree has, so that rsync's and backupkit's quick checks agree on "unchanged". */
const TREE_MTIME = new Date('2026-01-01T00:00:00Z');

/**
 * `count` files of `bytes` in all (each 20-180% of the mean) in 100 files per folder, two levels
 * deep; even files are text (words, which deflate about 3:1), odd ones random bytes.
 */
export function buildTree(dir: string, count: number, bytes: number, log: Log): TreeData {
  const rand = prng(0x7ee5);
  const text = Buffer.from(Array.from({ length: 1 << 20 }, () => WORDS[rand() % WORDS.length]!).join(' '));
  const mean = bytes / count;
  const files: string[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const folder = Math.floor(i / 100);
    const rel = `d${String(folder % 20).padStart(2, '0')}/s${String(folder).padStart(3, '0')}/f${String(i).padStart(5, '0')}.${i % 2 ? 'bin' : 'txt'}`;
    const size = Math.floor(mean * (0.2 + (1.6 * (rand() % 1000)) / 1000));
    mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), treeContent(i, size, text, rand));
    utimesSync(path.join(dir, rel), TREE_MTIME, TREE_MTIME);
    files.push(rel);
    total += size;
    if (i % 2000 === 1999) log(`tree: ${i + 1} files, ${(total / 1e6).toFixed(0)} MB`);
  }
  return { dir, files, bytes: total };
}

function treeContent(i: number, size: number, text: Buffer, rand: () => number): Buffer {
  if (i % 2) return randomBytes(size);
  const out = Buffer.alloc(size);
  for (let at = 0; at < size; ) {
    const from = rand() % (text.length - 4096);
    at += text.copy(out, at, from, from + Math.min(4096, size - at));
  }
  return out;
}

/**
 * Rewrite every `step`-th file of the tree (new bytes, about the same size, a new mtime), first
 * copying each as it was into `before` (mtime kept), so that a copy of the tree can be put back.
 */
export function changeTree(tree: TreeData, step: number, before: string, when: Date): string[] {
  const rand = prng(0xc4a9);
  const text = Buffer.from(Array.from({ length: 1 << 16 }, () => WORDS[rand() % WORDS.length]!).join(' '));
  const changed = tree.files.filter((_, i) => i % step === step - 1);
  for (const rel of changed) {
    const file = path.join(tree.dir, rel);
    mkdirSync(path.join(before, path.dirname(rel)), { recursive: true });
    copyFileSync(file, path.join(before, rel));
    utimesSync(path.join(before, rel), TREE_MTIME, TREE_MTIME);
    const size = statSync(file).size + (rand() % 64);
    writeFileSync(file, rel.endsWith('.bin') ? randomBytes(size) : treeContent(0, size, text, rand));
    utimesSync(file, when, when);
  }
  return changed;
}
