/**
 * Seeding and fingerprinting MySQL/MariaDB databases on the test server. SQL runs as `bk` through
 * the `mariadb` client, the password in this test process's MYSQL_PWD (never the CLI's).
 */
import { spawn } from 'node:child_process';
import { inject } from 'vitest';

export function mysqlInfo() {
  return inject('mysql');
}

/** Run `sql` (any number of statements, DELIMITER allowed) and return the last result's rows. */
export function mysql(database: string | undefined, sql: string): Promise<(string | null)[][]> {
  const info = mysqlInfo();
  const args = ['--no-defaults', '--protocol=TCP', `--host=${info.host}`, `--port=${info.port}`, `--user=${info.user}`];
  args.push('--default-character-set=utf8mb4', '--batch', '--skip-column-names', ...(database ? [database] : []));
  return new Promise((resolve, reject) => {
    const child = spawn('mariadb', args, { env: { ...process.env, MYSQL_PWD: info.password }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`mariadb exited ${code}: ${err}\n${sql.slice(0, 500)}`));
      const lines = out.split('\n').filter((line) => line !== '');
      resolve(lines.map((line) => line.split('\t').map((field) => (field === 'NULL' ? null : field))));
    });
    // If the client dies before reading the SQL, its exit code and stderr say why, not an EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(sql);
  });
}

export function quoteIdent(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

let counter = 0;
/** A fresh, uniquely named database; dropped by nobody (the server is thrown away). */
export async function createDatabase(prefix: string): Promise<string> {
  const name = `${prefix}_${process.pid}_${++counter}_${Date.now() % 100000}`;
  await mysql(undefined, `CREATE DATABASE ${quoteIdent(name)}`);
  return name;
}

/** Every byte value 0..255, as a hex literal for UNHEX. */
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('hex');

/**
 * Tables of every type the round trips must carry: utf8mb4 text with emoji, quotes, backslashes,
 * newlines and `),(`; a BLOB with all 256 byte values; DECIMAL(20,6); DATETIME(6); JSON; NULLs;
 * a foreign key; a view, a trigger (filling `audit`) and a procedure whose body holds an INSERT;
 * an empty table. Row counts: customers `rows`, events 2×rows, audit 2×rows, empty_table 0.
 */
export async function seedVariedTypes(database: string, rows = 300): Promise<void> {
  await mysql(
    database,
    String.raw`
    CREATE TABLE customers (
      id INT PRIMARY KEY AUTO_INCREMENT,
      name VARCHAR(200) NOT NULL,
      bio TEXT,
      avatar BLOB,
      balance DECIMAL(20,6),
      joined DATETIME(6),
      profile JSON
    ) DEFAULT CHARSET=utf8mb4;
    CREATE TABLE events (
      id BIGINT PRIMARY KEY AUTO_INCREMENT,
      customer_id INT NOT NULL,
      kind VARCHAR(20),
      payload JSON,
      FOREIGN KEY (customer_id) REFERENCES customers (id)
    ) DEFAULT CHARSET=utf8mb4;
    CREATE TABLE audit (id INT PRIMARY KEY AUTO_INCREMENT, event_id BIGINT, note VARCHAR(100)) DEFAULT CHARSET=utf8mb4;
    CREATE TABLE empty_table (id INT PRIMARY KEY, x VARCHAR(10));
    CREATE VIEW customer_names AS SELECT id, name FROM customers;
    CREATE TRIGGER events_audit AFTER INSERT ON events FOR EACH ROW INSERT INTO audit (event_id, note) VALUES (NEW.id, CONCAT('kind ', NEW.kind));
    DELIMITER ;;
    CREATE PROCEDURE add_audit(IN n VARCHAR(100))
    BEGIN
    INSERT INTO ${'`audit`'} VALUES (NULL, 0, n),(NULL, 0, 'x');
    END;;
    DELIMITER ;
    INSERT INTO customers (name, bio, avatar, balance, joined, profile)
    SELECT
      CASE seq % 4 WHEN 0 THEN CONCAT('Zoë Ångström ', seq) WHEN 1 THEN CONCAT('山田太郎 ', seq) WHEN 2 THEN CONCAT('Ολυμπία 😀 ', seq) ELSE CONCAT('plain ', seq) END,
      CASE WHEN seq % 7 = 0 THEN NULL ELSE REPEAT(CONCAT('it''s a ),( \\ back\nslash;\n', seq, ' "dq" \t tab\r\n'), seq % 5) END,
      CASE WHEN seq % 6 = 0 THEN NULL ELSE CONCAT(UNHEX('${ALL_BYTES}'), UNHEX(MD5(seq))) END,
      CASE WHEN seq % 9 = 0 THEN NULL ELSE seq * 1234.567891 END,
      TIMESTAMPADD(MICROSECOND, seq * 3600000007, '2026-01-01 00:00:00.000000'),
      CASE WHEN seq % 5 = 0 THEN NULL ELSE JSON_OBJECT('i', seq, 'nested', JSON_OBJECT('ok', seq % 2 = 0, 'list', JSON_ARRAY(1, 'two', 3.5, NULL)), 'q', 'a "quote", \\ and ),(') END
    FROM seq_1_to_${rows};
    INSERT INTO events (customer_id, kind, payload)
    SELECT 1 + seq % ${rows}, CONCAT('kind', seq % 3), JSON_OBJECT('n', seq) FROM seq_1_to_${rows * 2};
  `,
  );
}

export type Fingerprint = Record<string, { count: number; md5: string | null }>;

const TEXTUAL = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob', 'json', 'enum', 'set']);

/**
 * Every base table's row count and an md5 over its rows in primary-key order, computed by the
 * server: text and binary columns as the hex of their bytes, others as text, NULL as `\N`.
 */
export async function fingerprint(database: string): Promise<Fingerprint> {
  const columns = await mysql(
    database,
    `SELECT c.table_name, c.column_name, c.data_type,
       (SELECT k.ordinal_position FROM information_schema.key_column_usage k
        WHERE k.table_schema = c.table_schema AND k.table_name = c.table_name AND k.column_name = c.column_name AND k.constraint_name = 'PRIMARY')
     FROM information_schema.columns c JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
     WHERE c.table_schema = DATABASE() AND t.table_type = 'BASE TABLE'
     ORDER BY c.table_name, c.ordinal_position`,
  );
  const tables = new Map<string, { exprs: string[]; pk: [number, string][] }>();
  for (const [table, column, type, pkPosition] of columns) {
    const entry = tables.get(table!) ?? { exprs: [], pk: [] };
    const quoted = quoteIdent(column!);
    entry.exprs.push(`IFNULL(${TEXTUAL.has(type!) ? `HEX(${quoted})` : `CAST(${quoted} AS CHAR)`}, '\\\\N')`);
    if (pkPosition) entry.pk.push([Number(pkPosition), quoted]);
    tables.set(table!, entry);
  }
  const out: Fingerprint = {};
  for (const [table, { exprs, pk }] of tables) {
    const row = `MD5(CONCAT_WS('|', ${exprs.join(', ')}))`;
    const order = pk.length > 0 ? pk.sort((a, b) => a[0] - b[0]).map(([, name]) => name).join(', ') : row;
    const [result] = await mysql(
      database,
      `SET SESSION group_concat_max_len = 1073741824;
       SELECT COUNT(*), MD5(GROUP_CONCAT(${row} ORDER BY ${order} SEPARATOR '')) FROM ${quoteIdent(table)}`,
    );
    out[table] = { count: Number(result![0]), md5: result![1] ?? null };
  }
  return out;
}

/** The names of the routines, triggers and views of `database`, as `kind:name`, sorted. */
export async function programObjects(database: string): Promise<string[]> {
  const rows = await mysql(
    database,
    `SELECT CONCAT('routine:', routine_name) FROM information_schema.routines WHERE routine_schema = DATABASE()
     UNION ALL SELECT CONCAT('trigger:', trigger_name) FROM information_schema.triggers WHERE trigger_schema = DATABASE()
     UNION ALL SELECT CONCAT('view:', table_name) FROM information_schema.views WHERE table_schema = DATABASE()`,
  );
  return rows.map((r) => r[0]!).sort();
}

export function mysqlTargetConfig(database: string, extra: Record<string, unknown> = {}) {
  const info = mysqlInfo();
  return {
    driver: 'mysqldump',
    url: `mysql://${info.user}:${encodeURIComponent(info.password)}@${info.host}:${info.port}/${database}`,
    ...extra,
  };
}
