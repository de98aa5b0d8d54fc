/**
 * A target's `encryption` (its own, else `defaults.encryption`), resolved: recipients checked one
 * by one (an `age1...` X25519 key; a secret key where a recipient belongs is named as such),
 * `recipientsFile` read as age reads it (one per line, `#` comments), a passphrase alone.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { EncryptionRules } from './schema.js';

export interface TargetEncryption {
  recipients: string[];
  passphrase: string | undefined;
  /** An identity file for unattended restores, resolved against the config's folder. */
  identityFile: string | undefined;
}

/** Throws, saying why, when `key` is not an age recipient. */
export type RecipientCheck = (key: string) => void;

/** typage's own recipient parser. Loaded only for configs that encrypt: typage takes 170-220 ms to load. */
export async function loadRecipientCheck(): Promise<RecipientCheck> {
  const { Encrypter } = await import('age-encryption');
  return (key) => void new Encrypter().addRecipient(key);
}

/** Whether a config (as read, before validation) has an `encryption` block anywhere it may. */
export function mentionsEncryption(raw: unknown): boolean {
  const object = (value: unknown): Record<string, unknown> | undefined => (typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined);
  const top = object(raw);
  if (object(top?.defaults)?.encryption !== undefined) return true;
  return Object.values(object(top?.targets) ?? {}).some((target) => object(target)?.encryption !== undefined);
}

/** Problems go into `problems` as "key: what is wrong"; `at` is the config key path of the block. */
export function resolveEncryption(rules: EncryptionRules | undefined, dir: string, at: string, problems: string[], checkRecipient: RecipientCheck | undefined): TargetEncryption | undefined {
  if (!rules) return undefined;
  if (!checkRecipient) throw new Error('resolveEncryption: the recipient check was not loaded (loadRecipientCheck)');
  const recipients: string[] = [];
  const check = (value: string, where: string) => {
    const key = value.trim();
    if (/^AGE-SECRET-KEY-/i.test(key)) {
      problems.push(`${where}: this is an identity (a private key), not a recipient; give its public key (age-keygen -y <identity file> prints it), and keep the identity off the backup host`);
      return;
    }
    try {
      checkRecipient(key);
    } catch (error) {
      const shown = key.length > 16 ? `${key.slice(0, 12)}...` : key;
      problems.push(`${where}: "${shown}" is not an age recipient (${(error as Error).message}); expected an X25519 public key age1... as age-keygen prints it`);
      return;
    }
    recipients.push(key);
  };
  for (const [index, value] of (rules.recipients ?? []).entries()) check(value, `${at}.recipients[${index}]`);
  if (rules.recipientsFile) {
    const file = path.resolve(dir, rules.recipientsFile);
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      problems.push(`${at}.recipientsFile: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    if (text !== undefined) {
      const before = recipients.length;
      for (const [index, line] of text.split('\n').entries()) {
        const trimmed = line.trim();
        if (trimmed && !trimmed.startsWith('#')) check(trimmed, `${at}.recipientsFile (${file}, line ${index + 1})`);
      }
      if (recipients.length === before && !problems.some((p) => p.startsWith(`${at}.recipientsFile`))) problems.push(`${at}.recipientsFile: ${file} holds no recipient`);
    }
  }
  const hasRecipients = (rules.recipients?.length ?? 0) > 0 || rules.recipientsFile !== undefined;
  if (rules.passphrase !== undefined && hasRecipients) problems.push(`${at}.passphrase: give a passphrase or recipients, not both (age encrypts to one or the other)`);
  if (rules.passphrase === undefined && !hasRecipients) problems.push(`${at}: give "recipients", "recipientsFile" or "passphrase"`);
  return {
    recipients,
    passphrase: rules.passphrase,
    identityFile: rules.identityFile === undefined ? undefined : path.resolve(dir, rules.identityFile),
  };
}
