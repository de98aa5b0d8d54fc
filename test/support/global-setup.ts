/**
 * Once per test run: build the CLI (the e2e tests run bin/backupkit.js) and start the engines the
 * integration tests use. Their connection details reach the tests through `inject`.
 */
import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { type PgServer, startPostgres } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pg: { host: string; port: number; user: string; password: string; binDir: string };
  }
}

let pg: PgServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  pg = await startPostgres();
  project.provide('pg', { host: pg.host, port: pg.port, user: pg.user, password: pg.password, binDir: pg.binDir });
}

export async function teardown(): Promise<void> {
  await pg?.stop();
}
