// Locations, computed from the compiled file (dist/bench/lib/paths.js).
import * as path from 'node:path';

/** dist/bench */
export const DIST_BENCH = path.resolve(__dirname, '..');
/** Repository root */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
/** bench/results (source tree, committed) */
export const RESULTS_DIR = path.join(REPO_ROOT, 'bench', 'results');
