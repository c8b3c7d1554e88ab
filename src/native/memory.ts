// Memory housekeeping from the addon (native/memory.cc), for the idle memory of
// `outrigger start` (issue 15, src/startup-memory.ts): glibc malloc's free pages, and the node
// executable's clean file pages the start touched. Without the addon (OUTRIGGER_NATIVE=0, no
// build, a build older than memory.cc) or on a C library other than glibc, trim() changes
// nothing and returns false; releaseExecutablePages() returns 0 without the addon (or a build
// older than it).
import { createRequire } from 'node:module';
import { addonPath } from './addon';
import { native } from './index';

export interface MallocControl {
  /** Whether trim() reaches glibc (false: the no-op fallback). */
  readonly native: boolean;
  /** malloc_trim(0): the free pages of every malloc arena back to the kernel; true if any were released. */
  trim(): boolean;
  /**
   * madvise(MADV_DONTNEED) on the node executable's read-only mappings (code, read-only data,
   * the dynamic linker's symbol tables) that hold no written page: they leave the process's
   * resident set and stay in the page cache, and a page used again is mapped again by a minor
   * fault. Returns the KiB that were resident (0: nothing done).
   */
  releaseExecutablePages(): number;
}

export const fallbackMallocControl: MallocControl = { native: false, trim: () => false, releaseExecutablePages: () => 0 };

let control: MallocControl | undefined;

/** The addon's malloc control when the process uses the addon, else the no-op fallback. */
export function mallocControl(): MallocControl {
  if (control !== undefined) return control;
  control = fallbackMallocControl;
  if (native.kind !== 'native') return control;
  try {
    // Already loaded by src/native/addon.ts: this returns the same module object.
    const { mallocTrim, releaseExecutablePages } = createRequire(__filename)(addonPath()) as { mallocTrim?: () => boolean; releaseExecutablePages?: () => number };
    if (typeof mallocTrim === 'function') {
      control = { native: true, trim: () => mallocTrim(), releaseExecutablePages: typeof releaseExecutablePages === 'function' ? () => releaseExecutablePages() : () => 0 };
    }
  } catch {
    // `native` loaded this file, so it loads here too; if it were removed since: no-op.
  }
  return control;
}
