// Loader of the native IO binding. `native` is chosen once, at load, from OUTRIGGER_NATIVE:
//   1        -> the addon (throws if build/Release/outrigger_native.node does not load)
//   0        -> the TypeScript fallback
//   auto/unset -> the addon if it loads, else the fallback with a one-line warning on stderr.
import { loadAddonBinding } from './addon';
import { fallbackBinding } from './fallback';
import type { BindingKind, NativeBinding } from './types';

export type * from './types';
export { parseCpuList } from './fallback';

let addonBinding: NativeBinding | undefined;
let addonError: Error | undefined;

/** The binding of that kind; 'native' throws (with the cause) if the addon cannot be loaded. */
export function loadBinding(kind: BindingKind): NativeBinding {
  if (kind === 'fallback') return fallbackBinding;
  if (kind !== 'native') throw new TypeError(`binding kind must be 'native' or 'fallback', got ${String(kind)}`);
  if (addonBinding) return addonBinding;
  if (!addonError) {
    try {
      addonBinding = loadAddonBinding();
      return addonBinding;
    } catch (err) {
      addonError = err instanceof Error ? err : new Error(String(err));
    }
  }
  throw new Error(`outrigger native addon unavailable: ${addonError.message}`, { cause: addonError });
}

/** Why the addon did not load (undefined if it loaded or was not tried). */
export function addonLoadError(): Error | undefined {
  return addonError;
}

function select(): NativeBinding {
  const mode = (process.env.OUTRIGGER_NATIVE ?? 'auto').trim().toLowerCase();
  if (mode === '1') return loadBinding('native');
  if (mode === '0') return fallbackBinding;
  if (mode !== 'auto' && mode !== '') throw new Error(`OUTRIGGER_NATIVE must be 0, 1 or auto, got ${mode}`);
  try {
    return loadBinding('native');
  } catch (err) {
    process.stderr.write(`[outrigger] native addon not loaded (${(err as Error).message.split('\n')[0]}); using TypeScript fallbacks\n`);
    return fallbackBinding;
  }
}

export const native: NativeBinding = select();
