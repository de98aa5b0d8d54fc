#!/usr/bin/env node
import { availableParallelism } from 'node:os';

// Deflate runs on libuv's thread pool (four threads by default): give it one per core, plus one for
// file I/O. The pool reads this once, when first used, so it is set before anything else loads.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, availableParallelism() + 1));
await import('../dist/main.js');
