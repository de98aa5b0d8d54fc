/**
 * django-dumpdata driver. Manual: https://docs.djangoproject.com/en/stable/ref/django-admin/#dumpdata
 *
 * Config keys:
 *   project     the folder holding manage.py (required)
 *   python      the interpreter (default "python3" on PATH; e.g. ./venv/bin/python)
 *   settings    DJANGO_SETTINGS_MODULE, when manage.py does not set it
 *   database    the database alias (default "default")
 *   apps        only these apps or models ("shop", "shop.Order")
 *   exclude     apps or models left out; replaces the default list
 *               (contenttypes, auth.permission, admin.logentry, sessions.session)
 *   flush       run `manage.py flush` before loading (also `restore --flush`)
 *   emptyCheck  a model whose emptiness means "the database is empty" (e.g. auth.User)
 *   verifyInto  a database alias (migrated, holding nothing of value) that `verify --deep`
 *               empties and restores into; without it, deep verification is skipped
 *
 * Backup runs `manage.py dumpdata --natural-foreign --natural-primary` into db/data.json (deflated)
 * and counts the objects of each model from the JSON as it streams. Restore runs `loaddata`, fed
 * the entry on stdin (Django 3.2 and later), or from a 0600 temporary .json file for older Django.
 * A target's `files` hold MEDIA_ROOT.
 */
import { mkdir, rm } from 'node:fs/promises';
import { createWriteStream, existsSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { Driver } from '../../core/driver.js';
import { OperationError, UsageError } from '../../core/errors.js';
import type { Unit } from '../../core/manifest.js';
import { type DjangoTarget, countModels, djangoEnv, djangoVersion, introspect, managePy, modelsAreEmpty, pingDatabase, pythonPath } from './djangopy.js';
import { ModelCounter } from './jsoncount.js';
import { countingTap, dumpCommand, restoreCommand } from '../stream.js';
import { toolInfo } from '../tools.js';

const optionsSchema = z.object({
  project: z.string().min(1),
  python: z.string().min(1).optional(),
  settings: z.string().min(1).optional(),
  database: z.string().min(1).optional(),
  apps: z.array(z.string().min(1)).optional(),
  exclude: z.array(z.string().min(1)).optional(),
  flush: z.boolean().optional(),
  emptyCheck: z.string().min(1).optional(),
  verifyInto: z.string().min(1).optional(),
});
export type DjangoOptions = z.infer<typeof optionsSchema> & DjangoTarget;

const ENTRY = 'db/data.json';
const DEFAULT_EXCLUDES = ['contenttypes', 'auth.permission', 'admin.logentry', 'sessions.session'];

/** Does `label` (an app label or app.model) cover the model `model` (app.model, lower case)? */
export function covers(label: string, model: string): boolean {
  const l = label.toLowerCase();
  return l === model || model.startsWith(`${l}.`);
}

/** The models dumpdata will write, and the --exclude list to give it. */
export function selectModels(installed: { models: string[]; apps: string[] }, options: Pick<DjangoOptions, 'apps' | 'exclude'>): { models: string[]; excludes: string[] } {
  const excludes = options.exclude ?? DEFAULT_EXCLUDES.filter((label) => (label.includes('.') ? installed.models.includes(label) : installed.apps.includes(label)));
  const models = installed.models.filter((m) => (!options.apps || options.apps.some((a) => covers(a, m))) && !excludes.some((e) => covers(e, m)));
  return { models, excludes };
}

export function dumpdataArgs(options: DjangoOptions, excludes: string[]): string[] {
  return [managePy(options), 'dumpdata', '--natural-foreign', '--natural-primary', `--database=${options.database ?? 'default'}`, ...excludes.map((e) => `--exclude=${e}`), ...(options.apps ?? [])];
}

export function loaddataArgs(options: DjangoOptions, excludes: string[], fixture: string): string[] {
  return [managePy(options), 'loaddata', `--database=${options.database ?? 'default'}`, '--format=json', ...excludes.map((e) => `--exclude=${e}`), fixture];
}

/** loaddata reads stdin from Django 3.2 on. */
export function readsStdin(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 3 || (major === 3 && minor >= 2);
}

function checkProject(options: DjangoOptions): void {
  if (!existsSync(managePy(options))) {
    throw new OperationError(`${managePy(options)} does not exist`, { hint: 'Set the target\'s "project" to the folder that holds manage.py.' });
  }
}

export const djangoDriver: Driver<DjangoOptions> = {
  name: 'django-dumpdata',
  optionsSchema,
  pathKeys: ['project', 'python'],

  describe: (options) => ({ database: options.database ?? 'default', path: options.project }),

  withInto: (options, into) => ({ ...options, database: into }),

  matchesUnit: (name, unit) => covers(name, unit.name),

  check(options) {
    const own = options.database ?? 'default';
    return options.verifyInto === own ? [`verifyInto: "${own}" is the target's own database; name another alias, which verify --deep empties`] : [];
  },

  scratch: (options) =>
    options.verifyInto
      ? { kind: 'alias', alias: options.verifyInto }
      : { kind: 'unavailable', reason: 'the target has no "verifyInto" (a database alias verify --deep may empty and restore into)' },
  countUnits: (ctx, options, units) => countModels(ctx, options, options.database ?? 'default', units.map((u) => u.name)),
  async dropScratch(ctx, options, alias) {
    checkProject(options);
    await ctx.runner.run({ command: pythonPath(ctx, options), args: [managePy(options), 'flush', '--noinput', `--database=${alias}`], cwd: options.project, env: djangoEnv(options) }, { signal: ctx.signal });
  },

  async checkTools(ctx, options) {
    checkProject(options);
    await djangoVersion(ctx, options);
  },

  async tools(ctx, options) {
    checkProject(options);
    const django = await djangoVersion(ctx, options);
    return [await toolInfo(ctx, pythonPath(ctx, options)), { name: 'django', version: django }];
  },

  async ping(ctx, options) {
    checkProject(options);
    return pingDatabase(ctx, options, options.database ?? 'default');
  },

  async dump(ctx, options, sink) {
    checkProject(options);
    const installed = await introspect(ctx, options);
    const { models, excludes } = selectModels(installed, options);
    const counter = new ModelCounter();
    await dumpCommand(
      ctx,
      { command: pythonPath(ctx, options), args: dumpdataArgs(options, excludes), cwd: options.project, env: djangoEnv(options) },
      sink,
      ENTRY,
      { compressed: false, tap: countingTap(counter) },
    );
    const counts = counter.result();
    const units: Unit[] = models.map((name) => ({ name, kind: 'model', count: counts.get(name) ?? 0 }));
    for (const [name, count] of counts) if (!models.includes(name)) units.push({ name, kind: 'model', count });
    return { units, tool: { name: 'django', version: installed.django } };
  },

  async restore(ctx, options, archive, plan) {
    checkProject(options);
    const python = pythonPath(ctx, options);
    const version = await djangoVersion(ctx, options);
    const flush = plan.flush || options.flush === true;
    if (flush && plan.only) throw new UsageError('--flush empties the whole database; it cannot go with --only', { hint: 'Restore the chosen models without --flush.' });
    const alias = options.database ?? 'default';
    if (flush) {
      await ctx.runner.run({ command: python, args: [managePy(options), 'flush', '--noinput', `--database=${alias}`], cwd: options.project, env: djangoEnv(options) }, { signal: ctx.signal });
    }
    const excludes = plan.only ? plan.units.map((u) => u.name).filter((name) => !plan.only!.includes(name)) : [];
    if (readsStdin(version)) {
      await restoreCommand(ctx, { command: python, args: loaddataArgs(options, excludes, '-'), cwd: options.project, env: djangoEnv(options) }, await archive.open(ENTRY));
      return;
    }
    // Older Django reads fixtures from files only: a 0600 file with a .json name, removed after.
    const dir = ctx.tempPath('fixture');
    await mkdir(dir, { mode: 0o700 });
    try {
      const file = path.join(dir, 'data.json');
      await pipeline(await archive.open(ENTRY), createWriteStream(file, { mode: 0o600 }));
      await ctx.runner.run({ command: python, args: loaddataArgs(options, excludes, file), cwd: options.project, env: djangoEnv(options) }, { signal: ctx.signal });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },

  async isEmpty(ctx, options) {
    checkProject(options);
    const alias = options.database ?? 'default';
    if (options.emptyCheck) return modelsAreEmpty(ctx, options, alias, [options.emptyCheck]);
    const { models } = selectModels(await introspect(ctx, options), options);
    return modelsAreEmpty(ctx, options, alias, models);
  },
};

