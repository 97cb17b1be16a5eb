/**
 * Compiled compute pipelines keyed by kernel name + source variant + `override` constants.
 * Compilation errors become ShaderCompileError naming the WGSL file and line.
 */
import { ShaderCompileError } from './errors';

/** One piece of WGSL with the file it came from (kernels are a few snippets concatenated). */
export interface ShaderPart {
  file: string;
  code: string;
}

export interface KernelSource {
  /** Kernel name for labels and cache keys, e.g. 'flashPrefill'. */
  name: string;
  /** Distinguishes sources composed differently (e.g. 'f16packed'), part of the cache key. */
  variant: string;
  parts: ShaderPart[];
}

export class PipelineCache {
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();

  constructor(private readonly device: GPUDevice) {}

  get size(): number {
    return this.pipelines.size;
  }

  /** Get or compile. `constants` fill the kernel's WGSL `override` declarations. */
  get(src: KernelSource, constants: Record<string, number>): Promise<GPUComputePipeline> {
    const key = `${src.name}/${src.variant}?${Object.keys(constants)
      .sort()
      .map((k) => `${k}=${constants[k]}`)
      .join('&')}`;
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.compile(src, constants, key);
      p.catch(() => this.pipelines.delete(key)); // do not cache failures
      this.pipelines.set(key, p);
    }
    return p;
  }

  clear(): void {
    this.pipelines.clear();
  }

  private async compile(src: KernelSource, constants: Record<string, number>, key: string) {
    const code = src.parts.map((p) => (p.code.endsWith('\n') ? p.code : p.code + '\n')).join('');
    const module = this.device.createShaderModule({ label: `${src.name}.${src.variant}`, code });
    const info = await module.getCompilationInfo();
    const err = info.messages.find((m) => m.type === 'error');
    if (err) {
      const [file, line] = locate(src.parts, err.lineNum);
      throw new ShaderCompileError(file, line, err.message);
    }
    try {
      return await this.device.createComputePipelineAsync({
        label: `${key}.pipeline`,
        layout: 'auto',
        compute: { module, entryPoint: 'main', constants },
      });
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new ShaderCompileError(src.parts[src.parts.length - 1].file, 0, `pipeline creation failed: ${msg}`);
    }
  }
}

/** Maps a line of the concatenated source back to (file, line in that file). */
function locate(parts: ShaderPart[], line: number): [string, number] {
  let first = 1;
  for (const p of parts) {
    const n = (p.code.endsWith('\n') ? p.code : p.code + '\n').split('\n').length - 1;
    if (line < first + n) return [p.file, line - first + 1];
    first += n;
  }
  return [parts[parts.length - 1].file, line];
}
