/** Loads a config file that may be YAML (an Envoy bootstrap) without loading any xDS module. */
import * as fs from 'node:fs';
import { ConfigError } from './errors';
import { DEFAULTS } from './defaults';
import { loadConfigFile, parseConfig } from './index';
import type { OutriggerConfig } from './types';

/** A config file: `.yaml`/`.yml` (or a file that is not JSON) is read as YAML, with the same limits. */
export function loadAnyConfigFile(file: string): OutriggerConfig {
  if (!/\.ya?ml$/i.test(file)) return loadConfigFile(file);
  let text: string;
  try {
    const st = fs.statSync(file);
    if (st.size > DEFAULTS.maxConfigBytes) throw new ConfigError([{ path: '', message: `the file is larger than ${DEFAULTS.maxConfigBytes} bytes (the limit)` }], file);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError([{ path: '', message: `cannot read: ${e instanceof Error ? e.message : String(e)}` }], file);
  }
  let doc: unknown;
  try {
    // No custom tags, no aliases blow-up: the yaml package caps alias expansion (maxAliasCount).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const YAML = require('yaml') as typeof import('yaml'); // loaded for YAML files only
    doc = YAML.parse(text, { maxAliasCount: 100, prettyErrors: true });
  } catch (e) {
    throw new ConfigError([{ path: '', message: `YAML: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}` }], file);
  }
  return parseConfig(doc, file);
}

