/**
 * The state folder of one config on this host: `history.jsonl` and the drivers' scratch files
 * (a 0600 option file for a password, a SQLite snapshot). It is the folder of the config's first
 * local storage; a config whose storages are all remote keeps it in $XDG_STATE_HOME/backupkit
 * (~/.local/state/backupkit). History is this host's record of its own runs.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { partialPath, removePartials } from './partial.js';

export interface HistoryEntry {
  time: string;
  command: string;
  target: string | null;
  id: string | null;
  ok: boolean;
  durationMs: number;
  error: string | null;
}

export class StateDir {
  constructor(readonly root: string) {}

  async ensure(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  /** A temporary path, removed by a later run of the same target if this one dies. */
  tempPath(owner: string, name: string): string {
    return partialPath(this.root, owner, name);
  }

  removeLeftovers(target: string): Promise<string[]> {
    return removePartials(this.root, target);
  }

  async appendHistory(entry: HistoryEntry): Promise<void> {
    await this.ensure();
    await appendFile(path.join(this.root, 'history.jsonl'), `${JSON.stringify(entry)}\n`, { mode: 0o600 });
  }

  async readHistory(): Promise<HistoryEntry[]> {
    let text: string;
    try {
      text = await readFile(path.join(this.root, 'history.jsonl'), 'utf8');
    } catch {
      return [];
    }
    const out: HistoryEntry[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as HistoryEntry);
      } catch {
        // a line cut short by a crash: skip it
      }
    }
    return out;
  }
}

/** Where a config keeps its state when it has no local storage. */
export function defaultStateRoot(env: NodeJS.ProcessEnv, home: string): string {
  const base = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(home, '.local', 'state');
  return path.join(base, 'backupkit');
}
