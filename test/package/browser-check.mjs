// Browser half of the package test: loaded by a bare HTML page through an import map (no bundler).
// Results go to window.__result (or window.__error), which the test polls.
import { createContext } from 'webattn';
import { chat } from './examples/browser-chat.js';
import { attentionCheck, kernelsCheck, requestOwnDevice } from './checks.mjs';

const params = new URLSearchParams(location.search);
try {
  const { device } = await requestOwnDevice(navigator.gpu);
  const kernels = await kernelsCheck(device);
  device.destroy();
  const ctx = await createContext();
  const adapter = ctx.adapterDescription;
  const attention = await attentionCheck(ctx);
  ctx.destroy();
  const pieces = [];
  await chat(new URL(params.get('model'), location.href).href, params.get('question'), (t) => pieces.push(t), {
    temperature: 0,
    max_tokens: Number(params.get('max')),
    kvDtype: 'f32',
  });
  window.__result = { adapter, kernels, attention, pieces };
} catch (e) {
  window.__error = `${e?.name}: ${e?.message}`;
}
