import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  defaultsFileText,
  globalOptionFiles,
  mysqlConnection,
  mysqlDumpDriver,
  mysqldumpArgs,
  mysqlQueryArgs,
  mysqlRestoreArgs,
  quoteIdent,
  quoteString,
} from '../../src/drivers/mysql/mysqldump.js';
import { MysqlDumpCounter, TableSectionFilter } from '../../src/drivers/mysql/mysqlsql.js';
import { findTool } from '../../src/drivers/tools.js';
import { createDatabase, mysqlInfo, seedVariedTypes } from '../support/mysqldb.js';

const run = promisify(execFile);
const CHUNK_SIZES = [1, 3, 7, 65536];
const url = "mysql://app:p%40ss%20'w%22rd@db.example:3307/shop";

describe('mysql connection', () => {
  it('parses a mysql:// or mariadb:// URL, decoding the password', () => {
    const expected = { host: 'db.example', port: 3307, user: 'app', password: `p@ss 'w"rd`, database: 'shop', socket: undefined };
    expect(mysqlConnection({ url })).toEqual(expected);
    expect(mysqlConnection({ url: url.replace('mysql:', 'mariadb:') })).toEqual(expected);
    expect(mysqlConnection({ url: 'mysql://u@[::1]/db?socket=/run/mysqld/mysqld.sock' })).toMatchObject({ host: '::1', port: undefined, socket: '/run/mysqld/mysqld.sock' });
  });

  it('lets explicit keys override the URL', () => {
    expect(mysqlConnection({ url, database: 'other', port: 3306, password: 'x' })).toMatchObject({ host: 'db.example', port: 3306, database: 'other', password: 'x' });
  });

  it.each([
    [{ url }, []],
    [{ database: 'shop' }, []],
    [{}, ['url: set "url", or "database" (with host, port, user, password or socket as needed)']],
    [{ url: 'postgres://h/db' }, ['url: expected a mysql:// or mariadb:// URL']],
    [{ url: 'not a url' }, ['url: not a valid URL (expected mysql://user:password@host:port/database)']],
    [{ url: 'mysql://h:3306' }, ['database: the url names no database; set "database"']],
    [{ url: 'mysql://h:3306', database: 'shop' }, []],
    [{ url: 'mysql://h/db?ssl=true' }, ['url: unsupported parameter "ssl" (supported: socket)']],
  ])('check(%j)', (options, problems) => {
    expect(mysqlDumpDriver.check!(options)).toEqual(problems);
  });

  it('describes the source without secrets', () => {
    expect(mysqlDumpDriver.describe({ url })).toEqual({ database: 'shop', host: 'db.example', port: 3307 });
    expect(mysqlDumpDriver.describe({ database: 'shop' })).toEqual({ database: 'shop', host: 'localhost', port: 3306 });
    expect(mysqlDumpDriver.describe({ database: 'shop', socket: '/tmp/s' })).toEqual({ database: 'shop', host: 'localhost', path: '/tmp/s' });
    expect(mysqlDumpDriver.withInto({ url }, 'copy', '/srv')).toEqual({ url, database: 'copy' });
  });
});

describe('mysql argv builders', () => {
  const file = '/backups/.shop_x.my.cnf.1.partial';
  const options = { url, tables: ['users', 'orders'], excludeTables: ['audit'] };

  it.each([
    ['dump', mysqldumpArgs(file, options)],
    ['dump (mysql)', mysqldumpArgs(file, options, 'mysql')],
    ['restore', mysqlRestoreArgs(file, options)],
    ['query', mysqlQueryArgs(file, options, 'SELECT 1')],
    ['socket', mysqldumpArgs(file, { ...options, socket: '/run/s' })],
  ])('%s: the option file first (the only one read, as the url has a password), never the password', (_name, args) => {
    expect(args[0]).toBe(`--defaults-file=${file}`);
    expect(args.join(' ')).not.toMatch(/p@ss|p%40ss|password/);
  });

  it('dumps in one transaction with routines, triggers, events, blobs as hex, and no --databases', () => {
    expect(mysqldumpArgs(file, options)).toEqual([
      `--defaults-file=${file}`,
      '--host=db.example',
      '--port=3307',
      '--protocol=TCP',
      '--user=app',
      '--default-character-set=utf8mb4',
      '--single-transaction',
      '--routines',
      '--triggers',
      '--events',
      '--hex-blob',
      '--skip-dump-date',
      '--max-allowed-packet=1G',
      '--ignore-table=shop.audit',
      '--',
      'shop',
      'users',
      'orders',
    ]);
    expect(mysqldumpArgs(file, options, 'mysql')).toContain('--set-gtid-purged=OFF');
  });

  it('connects through the socket when one is set, and leaves defaults to the tool otherwise; an option file without a password is an extra one', () => {
    expect(mysqldumpArgs(file, { ...options, socket: '/run/s' }).slice(1, 4)).toEqual(['--protocol=SOCKET', '--socket=/run/s', '--user=app']);
    expect(mysqlRestoreArgs(file, { database: 'shop' })).toEqual([
      `--defaults-extra-file=${file}`,
      '--connect-timeout=15',
      '--default-character-set=utf8mb4',
      '--binary-mode',
      '--max-allowed-packet=1G',
      '--',
      'shop',
    ]);
    expect(mysqlQueryArgs(file, { host: 'h', database: 'shop' }, 'SELECT 1').slice(1)).toEqual([
      '--host=h',
      '--connect-timeout=15',
      '--default-character-set=utf8mb4',
      '--batch',
      '--skip-column-names',
      '-e',
      'SELECT 1',
    ]);
  });

  it('quotes identifiers and strings', () => {
    expect(quoteIdent('we`ird')).toBe('`we``ird`');
    expect(quoteString("it's \\ here")).toBe("'it''s \\\\ here'");
  });
});

describe('the option file', () => {
  const cases: [string | undefined, string][] = [
    [undefined, '[client]\n'],
    ['plain', '[client]\npassword="plain"\n'],
    [`Sp3c!al'"#pw`, `[client]\npassword="Sp3c!al\\'\\"#pw"\n`],
    ['back\\slash\\', '[client]\npassword="back\\\\slash\\\\"\n'],
    [' spaces ', '[client]\npassword=" spaces "\n'],
    ['line\nbreak\ttab\r', '[client]\npassword="line\\nbreak\\ttab\\r"\n'],
    ['', '[client]\npassword=""\n'],
  ];
  it.each(cases)('holds %j', (password, text) => {
    expect(defaultsFileText(password)).toBe(text);
  });

  it('includes the system-wide option files that exist, first', () => {
    expect(defaultsFileText('pw', ['/etc/my.cnf', '/opt/my sql/my.cnf'])).toBe('!include /etc/my.cnf\n!include /opt/my sql/my.cnf\n[client]\npassword="pw"\n');
    const present = new Set(['/etc/mysql/my.cnf', '/srv/maria/my.cnf']);
    expect(globalOptionFiles({}, (f) => present.has(f))).toEqual(['/etc/mysql/my.cnf']);
    expect(globalOptionFiles({ MARIADB_HOME: '/srv/maria' }, (f) => present.has(f))).toEqual(['/etc/mysql/my.cnf', '/srv/maria/my.cnf']);
    expect(globalOptionFiles({ MYSQL_HOME: '/srv/maria' }, () => true)).toEqual(['/etc/my.cnf', '/etc/mysql/my.cnf', '/srv/maria/my.cnf']);
  });

  const client = findTool('mariadb', undefined, process.env) ?? findTool('mysql', undefined, process.env);
  it.runIf(client)('reads back exactly as written, by the real option-file parser', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'backupkit-mycnf-'));
    try {
      for (const password of [`Sp3c!al'"#pw`, 'back\\slash\\', ' spaces ', '#', '"', "'", 'a"b\'c\\d#e;f', 'tab\there']) {
        const file = path.join(dir, 'my.cnf');
        writeFileSync(file, defaultsFileText(password), { mode: 0o600 });
        const { stdout } = await run(client!, [`--defaults-file=${file}`, '--print-defaults']);
        expect(stdout.split('\n')[1]).toBe(`--password=${password} `);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(client)("is the only file read when the target has a password: ~/.my.cnf's cannot win, the included files are read", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'backupkit-mycnf-'));
    try {
      writeFileSync(path.join(dir, '.my.cnf'), '[client]\npassword=from-home\nconnect-timeout=7\n');
      const global = path.join(dir, 'global.cnf');
      writeFileSync(global, '[client]\npassword=from-global\nport=3999\n');
      const file = path.join(dir, 'backupkit.cnf');
      const env = { ...process.env, HOME: dir };
      const printed = async (args: string[]) => (await run(client!, [args[0]!, '--print-defaults'], { env })).stdout;

      writeFileSync(file, defaultsFileText('from-target', [global]), { mode: 0o600 });
      const only = await printed(mysqlQueryArgs(file, { url: 'mysql://u:from-target@h/db' }, 'SELECT 1'));
      expect(only).toContain('--port=3999');
      expect(only).not.toContain('from-home');
      expect(only.trim().split(/\s+/).filter((a) => a.startsWith('--password=')).at(-1)).toBe('--password=from-target');

      // No password in the config: the user's own file supplies it, as the client would on its own.
      writeFileSync(file, defaultsFileText(undefined), { mode: 0o600 });
      const extra = await printed(mysqlQueryArgs(file, { url: 'mysql://u@h/db' }, 'SELECT 1'));
      expect(extra).toContain('--password=from-home');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function count(text: string | Buffer, size: number) {
  const counter = new MysqlDumpCounter();
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) counter.write(bytes.subarray(i, i + size));
  return { counts: Object.fromEntries(counter.counts().map((t) => [t.name, t.count])), complete: counter.complete };
}

function filter(text: string | Buffer, tables: string[], size: number): string {
  const f = new TableSectionFilter(tables);
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(f.write(bytes.subarray(i, i + size)));
  out.push(f.end());
  return Buffer.concat(out).toString('utf8');
}

const END = '-- Dump completed\n';

describe('counting rows in a dump', () => {
  const cases: [string, string, Record<string, number>][] = [
    ['one-line extended insert', "INSERT INTO `t` VALUES (1,'a'),(2,'b'),(3,NULL);\n", { t: 3 }],
    ['MariaDB: a tuple per line', 'INSERT INTO `t` VALUES\n(1,2),\n(3,4);\n', { t: 2 }],
    ['"),(" and ";" inside strings', "INSERT INTO `t` VALUES (1,'a),(b;'),(2,'),('),(3,');\\n');\n", { t: 3 }],
    ['escaped quotes and backslashes', "INSERT INTO `t` VALUES (1,'it\\'s'),(2,'\\\\'),(3,'\\\\\\''),(4,'x''y(');\n", { t: 4 }],
    ['hex blobs', 'INSERT INTO `t` VALUES (1,0x28293B27),(2,0x),(3,_binary 0x5C);\n', { t: 3 }],
    ['nested parentheses', 'INSERT INTO `t` VALUES (1,(2)),(3,((4),(5)));\n', { t: 2 }],
    ['several statements', 'INSERT INTO `t` VALUES (1),(2);\nINSERT INTO `t` VALUES (3);\nINSERT INTO `u` VALUES (4);\n', { t: 3, u: 1 }],
    ['empty tables from CREATE TABLE', 'CREATE TABLE `e` (\n  `id` int\n);\nCREATE TABLE `a``b` (x int);\n', { e: 0, 'a`b': 0 }],
    [
      'routine bodies in DELIMITER blocks are not rows',
      'CREATE TABLE `t` (x int);\nDELIMITER ;;\nCREATE PROCEDURE p()\nBEGIN\nINSERT INTO `t` VALUES (1),(2);\nEND ;;\nDELIMITER ;\nINSERT INTO `t` VALUES (9);\n',
      { t: 1 },
    ],
    ['views are not tables', "/*!50001 CREATE TABLE `v` (\n  `id` tinyint NOT NULL\n) ENGINE=MyISAM */;\n/*!50001 CREATE VIEW `w` AS SELECT 1 AS `id` */;\n", {}],
    ['a long line before a statement', `-- ${'x'.repeat(5000)}\nINSERT INTO \`t\` VALUES ('${'y'.repeat(5000)}'),(2);\n`, { t: 2 }],
  ];
  for (const size of CHUNK_SIZES) {
    it.each(cases)(`%s (chunks of ${size})`, (_name, text, expected) => {
      expect(count(text + END, size)).toEqual({ counts: expected, complete: true });
    });
  }

  it('is not complete when the dump stops early', () => {
    expect(count("INSERT INTO `t` VALUES (1,'a'),(2,", 3).complete).toBe(false);
    expect(count('INSERT INTO `t` VALUES (1);\n', 3).complete).toBe(false);
  });
});

/** The shape Oracle's mysqldump 8.x writes: one-line inserts, GTID lines, "Temporary view structure". */
const MYSQL8_DUMP = `-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)
--
-- Host: localhost    Database: shop
-- ------------------------------------------------------
-- Server version	8.0.36

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!50503 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
SET @MYSQLDUMP_TEMP_LOG_BIN = @@SESSION.SQL_LOG_BIN;
SET @@SESSION.SQL_LOG_BIN= 0;

--
-- Table structure for table \`customers\`
--

DROP TABLE IF EXISTS \`customers\`;
CREATE TABLE \`customers\` (
  \`id\` int NOT NULL,
  \`name\` varchar(100) DEFAULT NULL,
  PRIMARY KEY (\`id\`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

--
-- Dumping data for table \`customers\`
--

LOCK TABLES \`customers\` WRITE;
INSERT INTO \`customers\` VALUES (1,'a),(b'),(2,'it\\'s \\\\'),(3,NULL);
INSERT INTO \`customers\` VALUES (4,'\\n-- Table structure for table \`orders\`');
UNLOCK TABLES;

--
-- Table structure for table \`orders\`
--

DROP TABLE IF EXISTS \`orders\`;
CREATE TABLE \`orders\` (\`id\` int NOT NULL, \`blob\` blob) ENGINE=InnoDB;

--
-- Dumping data for table \`orders\`
--

LOCK TABLES \`orders\` WRITE;
INSERT INTO \`orders\` VALUES (1,0x28293B),(2,NULL);
UNLOCK TABLES;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=\`app\`@\`%\`*/ /*!50003 TRIGGER \`orders_ai\` AFTER INSERT ON \`orders\` FOR EACH ROW BEGIN
INSERT INTO \`customers\` VALUES (NEW.id, 'x');
END */;;
DELIMITER ;

--
-- Temporary view structure for view \`names\`
--

DROP TABLE IF EXISTS \`names\`;
/*!50001 CREATE VIEW \`names\` AS SELECT 1 AS \`id\`*/;

--
-- Dumping routines for database 'shop'
--
DELIMITER ;;
CREATE DEFINER=\`app\`@\`%\` PROCEDURE \`fill\`()
BEGIN
INSERT INTO \`orders\` VALUES (7,NULL),(8,NULL);
END ;;
DELIMITER ;

--
-- Final view structure for view \`names\`
--

/*!50001 DROP VIEW IF EXISTS \`names\`*/;
/*!50001 VIEW \`names\` AS select \`customers\`.\`id\` AS \`id\` from \`customers\` */;
SET @@SESSION.SQL_LOG_BIN = @MYSQLDUMP_TEMP_LOG_BIN;
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;

-- Dump completed on 2026-11-21  2:00:00
`;

describe('a MySQL 8 dump', () => {
  it.each(CHUNK_SIZES)('counts its rows (chunks of %i)', (size) => {
    expect(count(MYSQL8_DUMP, size)).toEqual({ counts: { customers: 4, orders: 2 }, complete: true });
  });

  it.each(CHUNK_SIZES)('--only keeps the tables sections with the header and footer (chunks of %i)', (size) => {
    const only = filter(MYSQL8_DUMP, ['orders'], size);
    expect(only).toContain('/*!50503 SET NAMES utf8mb4 */;');
    expect(only).toContain('CREATE TABLE `orders`');
    expect(only).toContain('INSERT INTO `orders` VALUES (1,0x28293B),(2,NULL);');
    expect(only).toContain('TRIGGER `orders_ai`');
    expect(only).toContain('SET @@SESSION.SQL_LOG_BIN = @MYSQLDUMP_TEMP_LOG_BIN;');
    expect(only).toContain('/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;');
    expect(only).toContain('-- Dump completed');
    for (const dropped of ['`customers` (', 'INSERT INTO `customers` VALUES (1', 'VIEW `names`', 'PROCEDURE']) expect(only).not.toContain(dropped);
    expect(count(only, 64).counts).toEqual({ orders: 2 });
    // Title blocks stay whole: no "--" line is left without its title.
    expect(only).toMatch(/\n--\n-- Table structure for table `orders`\n--\n/);
    const lines = only.split('\n');
    const orphans = lines.filter((line, i) => line === '--' && !lines[i - 1]?.startsWith('-- ') && !lines[i + 1]?.startsWith('-- '));
    expect(orphans).toEqual([]);
  });

  it('--only with every table keeps all but views and routines', () => {
    const all = filter(MYSQL8_DUMP, ['customers', 'orders'], 5);
    expect(count(all, 5).counts).toEqual({ customers: 4, orders: 2 });
    expect(all).not.toContain('PROCEDURE');
  });
});

describe('a real mariadb-dump', () => {
  let dump: Buffer;
  beforeAll(async () => {
    const info = mysqlInfo();
    const database = await createDatabase('unit');
    await seedVariedTypes(database, 200);
    const args = ['--no-defaults', `--host=${info.host}`, `--port=${info.port}`, `--user=${info.user}`];
    const { stdout } = await run('mariadb-dump', [...args, '--single-transaction', '--routines', '--triggers', '--events', '--hex-blob', '--net-buffer-length=8192', database], {
      env: { ...process.env, MYSQL_PWD: info.password },
      encoding: 'buffer',
      maxBuffer: 1 << 28,
    });
    dump = stdout;
  });

  it.each(CHUNK_SIZES)('counts exactly, across many INSERT statements per table (chunks of %i)', (size) => {
    expect(dump.toString('latin1').match(/^INSERT INTO `customers`/gm)!.length).toBeGreaterThan(3);
    expect(count(dump, size)).toEqual({ counts: { audit: 400, customers: 200, empty_table: 0, events: 400 }, complete: true });
  });

  it.each([1, 7, 65536])('--only keeps exactly the named tables (chunks of %i)', (size) => {
    const only = filter(dump, ['events', 'empty_table'], size);
    expect(count(only, 4096).counts).toEqual({ empty_table: 0, events: 400 });
    expect(only).toContain('TRIGGER events_audit');
    for (const dropped of ['PROCEDURE', 'VIEW `customer_names`', 'CREATE TABLE `customers`']) expect(only).not.toContain(dropped);
    expect(only).toMatch(/SET TIME_ZONE=@OLD_TIME_ZONE \*\/;\n[\s\S]*SET SQL_NOTES=@OLD_SQL_NOTES/);
  });
});
