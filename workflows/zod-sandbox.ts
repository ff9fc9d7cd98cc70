/**
 * zod as workflow code uses it. This module is preloaded once per worker (`workers/bundle.ts`),
 * before the sandbox deep-freezes shared modules, so zod's global configuration is completed here:
 * - `jitless`: zod otherwise compiles a parser with `new Function` the first time each object
 *   schema parses; schemas are built per run, so that compile would be paid on every run.
 * - the English locale, which zod would otherwise install lazily on first use, into a frozen object.
 * The warm-up parses touch zod's other lazy global paths (success and error) before the freeze.
 */
import { z } from 'zod';

z.config({ ...z.locales.en(), jitless: true });
z.strictObject({ a: z.string().min(1), b: z.array(z.number()).optional() }).safeParse({ a: '', c: 1 });
z.strictObject({ a: z.string() }).safeParse({ a: 'x' });

export { z };
