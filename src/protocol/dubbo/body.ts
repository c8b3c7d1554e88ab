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
import { StringCache } from '../string-cache';

const skip = new SkipState();
/** The leading strings repeat from request to request: decoded once per distinct value. */
const names = new StringCache();

/** Fills dubboVersion, service, version, method, paramDesc, argsStart; false when unreadable. */
export function readLeadingStrings(buf: Buffer, f: DubboXFrame): boolean {
  if (!f.isRequest || f.isEvent || f.serialization !== SERIALIZATION_HESSIAN2) return false;
  const end = f.bodyStart + f.bodyLen;
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
