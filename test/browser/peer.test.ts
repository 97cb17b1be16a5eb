/**
 * The peer bench (`npm run bench:peer -- --quick`, one rep) end to end: Vite serves bench/peer/ and
 * onnxruntime-web's dist cross-origin isolated, headless Chromium (SwiftShader) runs webattn and
 * ORT's GroupQueryAttention on one device. Every quick shape must come back with a webattn row and
 * a row per ORT mode whose output agreed with webattn's (rel L2 < 1e-3) and whose vsOrt is the
 * ratio of the two medians; nothing may be skipped for disagreeing.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runPeerInChromium } from '../../bench/peer/run';
import { formatPeerTable, ORT_MODES } from '../../bench/peer/peerBench';

const CHROMIUM = process.env.WEBATTN_CHROMIUM ?? '/usr/bin/chromium';

describe('peer bench in Chromium', () => {
  it('quick run: webattn and every ORT mode agree on every shape, rows carry vsOrt', async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: the browser tests need Debian's chromium`);
    const t0 = performance.now();
    const report = await runPeerInChromium({ quick: true, reps: 1, log: (m) => console.log(`[peer] ${m}`) });
    console.log(`[peer] quick run in ${((performance.now() - t0) / 1000).toFixed(1)} s\n${formatPeerTable(report)}`);

    expect(report.skipped).toEqual([]);
    expect(report.adapter).toBeTruthy();
    expect(report.ortVersion).toMatch(/^1\.30\./);
    const shapes = [...new Set(report.rows.map((r) => r.name.slice(0, r.name.lastIndexOf(' '))))];
    expect(shapes.length).toBe(3); // decode b1, decode b2, prefill
    expect(report.rows.length).toBe(shapes.length * (1 + ORT_MODES.length));
    for (const shape of shapes) {
      const rows = report.rows.filter((r) => r.name.startsWith(`${shape} `));
      const ours = rows.find((r) => r.kernel === 'webattn')!;
      expect(ours.medianMs).toBeGreaterThan(0);
      expect(ours.checkRelL2).toBeNull();
      for (const mode of ORT_MODES) {
        const r = rows.find((x) => x.kernel === mode)!;
        expect(r.checkRelL2!).toBeLessThan(1e-3);
        expect(r.medianMs).toBeGreaterThan(0);
        expect(r.vsOrt).toBeCloseTo(r.medianMs / ours.medianMs, 6);
        expect(r.gbPerSecond).toBeCloseTo(ours.gbPerSecond * (ours.medianMs / r.medianMs), 6);
      }
      expect(ours.vsOrt).toBeCloseTo(rows.find((x) => x.kernel === 'ort-static')!.vsOrt, 6);
    }
  }, 180_000);
});
