/**
 * Once per test run: build the CLI (the e2e tests run bin/backupkit.js) and start the engines the
 * integration tests use. Their connection details reach the tests through `inject`.
 */
import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { type MariadbServer, startMariadb } from './mariadb.js';
import { type MongoEngine, mongoToolsBin, startMongo } from './mongo.js';
import { type PgServer, startPostgres } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pg: { host: string; port: number; user: string; password: string; binDir: string };
    mongo: { uri: string; real: boolean; toolsBin: string };
    mysql: { host: string; port: number; user: string; password: string; socket: string };
  }
}

let pg: PgServer | undefined;
let mongo: MongoEngine | undefined;
let mysql: MariadbServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  try {
    pg = await startPostgres();
    project.provide('pg', { host: pg.host, port: pg.port, user: pg.user, password: pg.password, binDir: pg.binDir });
    mongo = await startMongo();
    project.provide('mongo', { uri: mongo.uri, real: mongo.real, toolsBin: mongoToolsBin() });
    mysql = await startMariadb();
    project.provide('mysql', { host: mysql.host, port: mysql.port, user: mysql.user, password: mysql.password, socket: mysql.socket });
  } catch (error) {
    // Vitest runs no teardown when setup fails: stop what did start, so no server outlives the run.
    await teardown().catch(() => undefined);
    throw error;
  }
}

export async function teardown(): Promise<void> {
  await Promise.all([pg?.stop(), mongo?.stop(), mysql?.stop()]);
}
