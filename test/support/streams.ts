/** Feeding bytes through a stream in chosen pieces, as a tool's pipe would hand them over. */
import { Readable, type Transform } from 'node:stream';

/** `data` cut into `chunk`-byte pieces (or the given pieces), through `transform`; its whole output. */
export async function through(data: Buffer | Buffer[], chunk: number, transform: Transform): Promise<Buffer> {
  const pieces: Buffer[] = [];
  if (Array.isArray(data)) pieces.push(...data);
  else for (let at = 0; at < data.length; at += chunk) pieces.push(data.subarray(at, at + chunk));
  const out: Buffer[] = [];
  for await (const piece of Readable.from(pieces).pipe(transform)) out.push(piece as Buffer);
  return Buffer.concat(out);
}
