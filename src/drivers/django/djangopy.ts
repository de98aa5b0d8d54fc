/**
 * The Python side of the django-dumpdata driver: small snippets run through `manage.py shell -c`,
 * with their inputs in environment variables (no quoting games) and one marked JSON line out.
 */
import path from 'node:path';
import type { DriverContext } from '../../core/driver.js';
import { OperationError, ToolFailedError, ToolMissingError, errorMessage } from '../../core/errors.js';
import { findTool } from '../tools.js';

const MARK = 'BACKUPKIT:';

export interface DjangoTarget {
  project: string;
  python?: string | undefined;
  settings?: string | undefined;
}

const INTROSPECT = `
import json, django
from django.apps import apps
models = [m for m in apps.get_models() if not m._meta.proxy]
print(${JSON.stringify(MARK)} + json.dumps({"django": django.get_version(), "models": [m._meta.label_lower for m in models], "apps": sorted({m._meta.app_label for m in models})}))
`;

const EMPTY = `
import json, os
from django.apps import apps
from django.db import DatabaseError
alias = os.environ["BACKUPKIT_DB_ALIAS"]
def has_rows(label):
    try:
        return apps.get_model(label)._base_manager.using(alias).exists()
    except DatabaseError:
        return False
print(${JSON.stringify(MARK)} + json.dumps({"empty": not any(has_rows(l) for l in json.loads(os.environ["BACKUPKIT_MODELS"]))}))
`;

// SQLite would create a missing database file on connecting: a ping only says it is missing.
const PING = `
import json, os
from django.db import connections
connection = connections[os.environ["BACKUPKIT_DB_ALIAS"]]
name = str(connection.settings_dict.get("NAME") or "")
missing = connection.vendor == "sqlite" and name != ":memory:" and not name.startswith("file:") and not os.path.exists(name)
if not missing:
    connection.ensure_connection()
print(${JSON.stringify(MARK)} + json.dumps({"vendor": connection.vendor, "name": name, "missing": missing}))
`;

const COUNT = `
import json, os
from django.apps import apps
from django.db import DatabaseError
alias = os.environ["BACKUPKIT_DB_ALIAS"]
def count(label):
    try:
        return apps.get_model(label)._base_manager.using(alias).count()
    except (LookupError, DatabaseError):
        return None
print(${JSON.stringify(MARK)} + json.dumps({"counts": [count(l) for l in json.loads(os.environ["BACKUPKIT_MODELS"])]}))
`;

const INSTALL_HINT =
  'Install Django for that interpreter (Debian/Ubuntu: apt-get install python3-django; or pip install django in the project\'s virtualenv), or set the target\'s "python" option to the interpreter that has it.';

/** The interpreter's path: an absolute `python`, else found in `bin` or PATH. */
export function pythonPath(ctx: Pick<DriverContext, 'bin' | 'env'>, options: DjangoTarget): string {
  const python = options.python ?? 'python3';
  const found = python.includes('/') ? python : findTool(python, ctx.bin, ctx.env);
  if (!found) throw new ToolMissingError(`Python interpreter ${python} not found ${ctx.bin ? `in ${ctx.bin} or ` : 'in '}PATH`, { hint: 'Set the target\'s "python" option to the project\'s interpreter, e.g. /usr/bin/python3 or ./venv/bin/python.' });
  return found;
}

export function managePy(options: DjangoTarget): string {
  return path.join(options.project, 'manage.py');
}

/** The environment every manage.py run gets. */
export function djangoEnv(options: DjangoTarget, extra: Record<string, string> = {}): Record<string, string | undefined> {
  return { ...(options.settings ? { DJANGO_SETTINGS_MODULE: options.settings } : {}), PYTHONUNBUFFERED: '1', ...extra };
}

/** Check the interpreter imports Django; returns Django's version. */
export async function djangoVersion(ctx: DriverContext, options: DjangoTarget): Promise<string> {
  const python = pythonPath(ctx, options);
  try {
    const { stdout } = await ctx.runner.run({ command: python, args: ['-c', 'import django; print(django.get_version())'], cwd: options.project }, { signal: ctx.signal });
    return stdout.trim();
  } catch (error) {
    if (error instanceof ToolFailedError) {
      throw new ToolMissingError(`Django cannot be imported by ${python}: ${error.stderrTail.split('\n').at(-1) ?? ''}`, { cause: error, hint: INSTALL_HINT });
    }
    if (error instanceof ToolMissingError) throw new ToolMissingError(`Python interpreter ${python} cannot be run`, { cause: error, hint: INSTALL_HINT });
    throw error;
  }
}

async function runSnippet<T>(ctx: DriverContext, options: DjangoTarget, code: string, env: Record<string, string> = {}): Promise<T> {
  const { stdout } = await ctx.runner.run(
    { command: pythonPath(ctx, options), args: [managePy(options), 'shell', '-c', code], cwd: options.project, env: djangoEnv(options, env) },
    { signal: ctx.signal },
  );
  const line = stdout.split('\n').find((l) => l.startsWith(MARK));
  if (!line) throw new OperationError(`manage.py shell printed no result:\n${stdout.slice(-2000)}`);
  try {
    return JSON.parse(line.slice(MARK.length)) as T;
  } catch (error) {
    throw new OperationError(`manage.py shell printed an unreadable result: ${errorMessage(error)}`);
  }
}

export function introspect(ctx: DriverContext, options: DjangoTarget): Promise<{ django: string; models: string[]; apps: string[] }> {
  return runSnippet(ctx, options, INTROSPECT);
}

export async function modelsAreEmpty(ctx: DriverContext, options: DjangoTarget, alias: string, models: string[]): Promise<boolean> {
  const result = await runSnippet<{ empty: boolean }>(ctx, options, EMPTY, { BACKUPKIT_DB_ALIAS: alias, BACKUPKIT_MODELS: JSON.stringify(models) });
  return result.empty;
}

/** Connect to the database alias as Django would; says which engine and database answered. */
export async function pingDatabase(ctx: DriverContext, options: DjangoTarget, alias: string): Promise<string> {
  try {
    const { vendor, name, missing } = await runSnippet<{ vendor: string; name: string; missing: boolean }>(ctx, options, PING, { BACKUPKIT_DB_ALIAS: alias });
    if (missing) {
      throw new OperationError(`Django's "${alias}" database ${name} does not exist`, {
        hint: `Create it (manage.py migrate --database=${alias}), or restore into it: backupkit restore ${ctx.target}`,
      });
    }
    return `Django database "${alias}" (${vendor}${name ? `: ${name}` : ''})`;
  } catch (error) {
    if (!(error instanceof ToolFailedError)) throw error;
    const reason = error.stderrTail.split('\n').filter((line) => line.trim()).at(-1) ?? error.message;
    throw new OperationError(`cannot connect to Django's "${alias}" database: ${reason}`, {
      cause: error,
      hint: `Check DATABASES["${alias}"] in the project's settings (and "settings" for the target), and that its server is running.`,
    });
  }
}

/** The objects of each model in the database `alias`; null for a model that is not there. */
export async function countModels(ctx: DriverContext, options: DjangoTarget, alias: string, models: string[]): Promise<(number | null)[]> {
  const result = await runSnippet<{ counts: (number | null)[] }>(ctx, options, COUNT, { BACKUPKIT_DB_ALIAS: alias, BACKUPKIT_MODELS: JSON.stringify(models) });
  return result.counts;
}
