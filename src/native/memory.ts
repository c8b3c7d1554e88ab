// glibc malloc housekeeping from the addon (native/memory.cc), for the idle memory of
// `outrigger start` (issue 15, src/startup-memory.ts). Without the addon (OUTRIGGER_NATIVE=0,
// no build, a build older than memory.cc) or on a C library other than glibc, trim() changes
// nothing and returns false.
import { createRequire } from 'node:module';
import { addonPath } from './addon';
import { native } from './index';

export interface MallocControl {
  /** Whether trim() reaches glibc (false: the no-op fallback). */
  readonly native: boolean;
  /** malloc_trim(0): the free pages of every malloc arena back to the kernel; true if any were released. */
  trim(): boolean;
}

export const fallbackMallocControl: MallocControl = { native: false, trim: () => false };

let control: MallocControl | undefined;

/** The addon's malloc control when the process uses the addon, else the no-op fallback. */
export function mallocControl(): MallocControl {
  if (control !== undefined) return control;
  control = fallbackMallocControl;
  if (native.kind !== 'native') return control;
  try {
    // Already loaded by src/native/addon.ts: this returns the same module object.
    const { mallocTrim } = createRequire(__filename)(addonPath()) as { mallocTrim?: () => boolean };
    if (typeof mallocTrim === 'function') control = { native: true, trim: () => mallocTrim() };
  } catch {
    // `native` loaded this file, so it loads here too; if it were removed since: no-op.
  }
  return control;
}
