/**
 * The layer rules of ../shared/DESIGN.md "Layers", checked by `npm run lint:layers` (part of `npm test`).
 * Data flows down; a layer imports only the layers below it (and itself):
 *
 *   demo/, bench/, scripts/, src/cli/   apps: anything in src/
 *   src/bench/                          benchmark definitions shared by the CLI and the demo
 *   src/engine/                         requests -> scheduler -> StepBatch; owns the KV cache manager
 *   src/model/, src/api/                forward(StepBatch), no KV bookkeeping; attention() on host arrays
 *   src/kv/   |  src/kernels/           siblings: kv is pure bookkeeping (no GPU); kernels hold the
 *             |  shaders/               page-table and StepBatch types and the GPU page buffers.
 *             |                         Neither imports the other (the code shows no need to).
 *   src/gpu/                            device, limits, buffers, dtypes, errors
 * Side layers, usable from the runtime but importing nothing of it:
 *   src/sources/, src/tokenizer/        file readers and the tokenizer
 *   src/reference/                      float64 twins (they read the model spec, RoPE maths, tensor
 *                                       names, kernel spec types, f16 rounding); used by apps, benches, tests
 * src/gpu/dtype.ts (the storage types, pure data) may be used by every layer.
 * Public entry points: src/index.ts (anything in src/), src/kernels/index.ts (kernels and gpu).
 *
 * Each rule below names one layer and lists what it may import; any other import of a module in
 * this repo (src/, demo/, bench/, scripts/, shaders/, test/) is an error. npm packages and node:
 * builtins are not checked here.
 */
const LOCAL = '^(src|demo|bench|scripts|shaders|test)/';
const DTYPE = '^src/gpu/dtype\\.ts$'; // the storage-type vocabulary: pure data, usable by every layer

/** A layer (`from`, less `except`) that may import only itself and `mayImport` among this repo's modules. */
function layer(name, from, mayImport, comment, except) {
  const source = except ? { path: from, pathNot: except } : { path: from };
  return { name, comment, severity: 'error', from: source, to: { path: LOCAL, pathNot: [from, ...mayImport] } };
}

const KV_BILL = '^src/model/kvBill\\.ts$';

module.exports = {
  forbidden: [
    layer('gpu', '^src/gpu/', [], 'src/gpu is the bottom layer: it imports no other layer'),
    layer('kernels', '^src/kernels/', ['^src/gpu/', '^shaders/'], 'kernels import only src/gpu and shaders/'),
    layer('kv', '^src/kv/', [DTYPE], 'src/kv is pure bookkeeping: no GPU code, so only src/gpu/dtype.ts'),
    layer(
      'model',
      '^src/model/',
      ['^src/kv/accounting\\.ts$', '^src/kernels/', '^src/gpu/', '^src/sources/', '^src/tokenizer/'],
      'src/model does no KV bookkeeping (the scheduler does): of src/kv only the byte accounting',
      KV_BILL,
    ),
    // kvBill.ts prices a sequence by running a KvCacheManager as the scheduler would: bookkeeping
    // that is not the model's. Its place is beside the scheduler (src/engine); until it moves there,
    // it alone may import src/kv whole.
    layer(
      'model-kv-bill',
      KV_BILL,
      ['^src/kv/', '^src/model/', '^src/gpu/dtype\\.ts$'],
      'the KV bill of a ModelSpec: the model spec and src/kv',
    ),
    layer(
      'api',
      '^src/api/',
      ['^src/kv/', '^src/kernels/', '^src/gpu/', '^src/sources/'],
      'src/api (attention on host arrays) sits beside src/model',
    ),
    layer(
      'engine',
      '^src/engine/',
      ['^src/model/', '^src/kv/', '^src/kernels/', '^src/gpu/', '^src/sources/', '^src/tokenizer/'],
      'src/engine imports the model and everything below it, never the apps',
    ),
    layer(
      'bench-definitions',
      '^src/bench/',
      [
        '^src/engine/',
        '^src/model/',
        '^src/api/',
        '^src/kv/',
        '^src/kernels/',
        '^src/gpu/',
        '^src/reference/',
        '^src/sources/',
        '^src/tokenizer/',
      ],
      'src/bench (shared by the CLI and the demo) imports the runtime, never the apps',
    ),
    layer('cli', '^src/cli(/|\\.ts$)', ['^src/'], 'the CLI imports anything in src/, never demo/, bench/ or test/'),
    layer('demo', '^demo/', ['^src/', '^bench/'], 'the demo imports src/ and the peer bench, never test/'),
    layer('bench', '^bench/', ['^src/'], 'bench/ imports src/, never demo/ or test/'),
    layer('scripts', '^scripts/', ['^src/'], 'scripts/ import src/, never demo/, bench/ or test/'),
    layer('sources', '^src/sources/', [DTYPE], 'src/sources is a side layer: it imports no runtime layer'),
    layer('tokenizer', '^src/tokenizer/', [], 'src/tokenizer is a side layer: it imports no runtime layer'),
    layer(
      'reference',
      '^src/reference/',
      [
        '^src/model/(config|ropeFrequencies|expectedTensors)\\.ts$',
        '^src/kernels/',
        '^src/sources/halfFloat\\.ts$',
        DTYPE,
      ],
      'the float64 twins use only the model spec, RoPE maths, tensor names, kernel spec types, f16 rounding',
    ),
    {
      name: 'reference-kernel-types-only',
      comment: 'src/reference may name kernel spec types but never runs GPU code',
      severity: 'error',
      from: { path: '^src/reference/' },
      to: { path: '^src/kernels/', dependencyTypesNot: ['type-only'] },
    },
    layer('entry', '^src/index\\.ts$', ['^src/'], 'src/index.ts re-exports from src/'),
    {
      name: 'entry-points-are-for-consumers',
      comment: 'src/index.ts and src/kernels/index.ts are public entries: code in src/ imports the module itself',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/index\\.ts$' },
      to: { path: '^src/(kernels/)?index\\.ts$' },
    },
    {
      name: 'fake-model-has-no-kv-bookkeeping',
      comment: "the engine tests' model double takes StepBatches as the real model does: no src/kv in it",
      severity: 'error',
      from: { path: '^test/engine/fakeModel\\.ts$' },
      to: { path: '^src/kv/' },
    },
    {
      name: 'no-circular',
      comment: 'a cycle of imports that run makes load order matter (a type-only edge vanishes at run time)',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'an import that resolves to nothing (a moved file whose importers were not updated)',
      severity: 'error',
      // test/package runs against the packed package in a scratch folder, where `webattn` resolves
      from: { pathNot: '^test/package/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // no includeOnly: it would also drop the unresolvable imports that not-to-unresolvable reports
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
      extensions: ['.ts', '.mts', '.js', '.mjs', '.json', '.wgsl'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
