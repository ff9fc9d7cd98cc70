/**
 * Payload codec benchmark (part of `npm run bench`): what encryption costs per payload, with the
 * keyring provider (the embedded default), against the JSON payload conversion alone. For payload
 * sizes a run really carries (a 256 B signal, a 4 KiB action input, a 64 KiB agent output): encode
 * and decode per second, MiB/s, and p99 of one encode+decode of a single payload (the latency a run's
 * activity or signal pays). Knob: BENCH_CODEC_ROUNDS (2000). Last line: JSON.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { KeyringKeyProvider } from '../../workers/codec/keyring';
import { WorkspacePayloadCodec } from '../../workers/codec/codec';

const ROUNDS = Number(process.env.BENCH_CODEC_ROUNDS ?? 2000);
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];
const context = { type: 'workflow' as const, namespace: 'default', workflowId: 'bench:run-1' };

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portarium-codec-bench-'));
  const codec = new WorkspacePayloadCodec(new KeyringKeyProvider(path.join(dir, 'keyring.json'), { create: true }));
  const results: Record<string, number> = {};
  for (const [label, bytes] of [['256B', 256], ['4KiB', 4096], ['64KiB', 65536]] as const) {
    const value = { note: 'x'.repeat(bytes - 12) };
    const payload = defaultPayloadConverter.toPayload(value);
    // Warm up: key creation, JIT.
    for (let i = 0; i < Math.min(500, ROUNDS); i++) await codec.decode(await codec.encode([payload], context), context);
    const lat: number[] = [];
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ROUNDS; i++) {
      const s = process.hrtime.bigint();
      const [enc] = await codec.encode([payload], context);
      await codec.decode([enc], context);
      lat.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    // Baseline: the JSON conversion every payload pays anyway.
    const b0 = process.hrtime.bigint();
    for (let i = 0; i < ROUNDS; i++) defaultPayloadConverter.fromPayload(defaultPayloadConverter.toPayload(value));
    const baseSecs = Number(process.hrtime.bigint() - b0) / 1e9;
    results[`roundtrips_per_s_${label}`] = Math.round(ROUNDS / secs);
    results[`mib_per_s_${label}`] = Number(((ROUNDS * bytes * 2) / secs / 1024 / 1024).toFixed(1));
    results[`p99_ms_${label}`] = Number(percentile(lat, 99).toFixed(3));
    results[`json_only_roundtrips_per_s_${label}`] = Math.round(ROUNDS / baseSecs);
    console.log(`codec ${label}: ${results[`roundtrips_per_s_${label}`]} encode+decode/s (${results[`mib_per_s_${label}`]} MiB/s), p99 ${results[`p99_ms_${label}`]} ms; JSON conversion alone ${results[`json_only_roundtrips_per_s_${label}`]}/s`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify({ bench: 'codec', rounds: ROUNDS, ...results }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
