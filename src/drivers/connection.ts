/** The connection keys of the server drivers (pg_dump, mysqldump): a URL, or its parts. */
import { z } from 'zod';

export const serverConnectionShape = {
  url: z.string().min(1).optional(),
  host: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  user: z.string().min(1).optional(),
  password: z.string().optional(),
  database: z.string().min(1).optional(),
};

/**
 * The problem with a connection string whose user, password or database holds a "%" that is not a
 * valid %-escape: found when the config is checked (exit 2), not when a run decodes it.
 */
export function badEscapeProblem(key: 'url' | 'uri'): string {
  return `${key}: holds a "%" that is not a valid %-escape (write a literal "%" as %25)`;
}
