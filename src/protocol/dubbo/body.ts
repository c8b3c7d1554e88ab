// Reads what routing needs from a hessian2 request body, without decoding the arguments
// unless an attachment is asked for (DubboCodec.encodeRequestData order):
//
//   dubbo version | service path | service version | method | parameter descriptor |
//   argument 1 .. argument N (N from the descriptor) | attachments map
//
// The first five are strings (version may be null): cheap to read. Attachments (group,
// interface, timeout, ...) sit behind the arguments, so reaching them means skipping every
// argument value (skipValue walks the Hessian grammar without building anything).

import { SERIALIZATION_HESSIAN2 } from './constants';
import type { DubboXFrame } from './xcodec';
import { countJvmArgs, hs, readString, readStringMap, skipValue, SkipState } from './hessian';
import { ByteRun, StringCache } from '../string-cache';

const skip = new SkipState();
/** The leading strings repeat from request to request: decoded once per distinct value. */
const names = new StringCache();

/**
 * The last request's five leading strings and the bytes they were read from. A client sends the
 * same service, version, method and descriptor request after request: when the next body starts
 * with the same bytes, they read the same (the reading looks at no byte past them), so one
 * compare of the run replaces five string lookups (each its tag, slot hash and compare: ~1,100
 * of ~1,900 instructions per request under callgrind, session 14).
 */
const lead = {
  run: new ByteRun(),
  dubboVersion: null as string | null,
  service: null as string | null,
  version: null as string | null,
  method: null as string | null,
  paramDesc: null as string | null,
};

/** Fills dubboVersion, service, version, method, paramDesc, argsStart; false when unreadable. */
export function readLeadingStrings(buf: Buffer, f: DubboXFrame): boolean {
  if (!f.isRequest || f.isEvent || f.serialization !== SERIALIZATION_HESSIAN2) return false;
  const end = f.bodyStart + f.bodyLen;
  const m = lead;
  if (m.run.matches(buf, f.bodyStart, end)) {
    f.dubboVersion = m.dubboVersion;
    f.service = m.service;
    f.version = m.version;
    f.method = m.method;
    f.paramDesc = m.paramDesc;
    f.argsStart = f.bodyStart + m.run.length;
    return true;
  }
  let p = readString(buf, f.bodyStart, end, names);
  if (p < 0) return false;
  f.dubboVersion = hs.value;
  p = readString(buf, p, end, names);
  if (p < 0) return false;
  f.service = hs.value;
  p = readString(buf, p, end, names);
  if (p < 0) return false;
  f.version = hs.value;
  p = readString(buf, p, end, names);
  if (p < 0) return false;
  f.method = hs.value;
  p = readString(buf, p, end, names);
  if (p < 0) return false;
  f.paramDesc = hs.value;
  f.argsStart = p;
  if (m.run.keep(buf, f.bodyStart, p - f.bodyStart)) {
    m.dubboVersion = f.dubboVersion;
    m.service = f.service;
    m.version = f.version;
    m.method = f.method;
    m.paramDesc = f.paramDesc;
  }
  return true;
}

/** Skips the arguments and reads the attachments into `out`; false when unreadable. */
export function readAttachments(buf: Buffer, f: DubboXFrame, out: Map<string, string>): boolean {
  const n = countJvmArgs(f.paramDesc ?? '');
  if (n < 0) return false;
  const end = f.bodyStart + f.bodyLen;
  skip.reset();
  let p = f.argsStart;
  for (let i = 0; i < n; i++) {
    p = skipValue(buf, p, end, skip);
    if (p < 0) return false;
  }
  if (p >= end) return true; // no attachments written
  return readStringMap(buf, p, end, skip, out) >= 0;
}
