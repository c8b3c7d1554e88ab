/**
 * The method of a Bolt request whose headers do not name it: SOFARPC clients that serialize with
 * hessian2 (sofa-rpc-node, for one) send only the `service` header; the method is a field of the
 * SofaRequest object in the content:
 *
 *   hessian 2.0:       'C' "com.alipay.sofa.rpc.core.request.SofaRequest" <field count> <field names...>
 *                      'O' <definition 0> (or 0x60) <field values, in the order of the names>
 *   hessian 2.0 draft: 'O' <type length> <type bytes> <field count> <field names...>
 *   (sofa-rpc-node)    'o' <definition 0> <field values>
 *
 * Field order differs between clients (Java: targetAppName first; sofa-rpc-node: methodName
 * first): the names are compared in place (no string made for them) and the values before
 * methodName skipped. One string per call: the method. undefined when the content is not such
 * an object.
 */
import { CLASS_SOFA_REQUEST, CODEC_HESSIAN2, CODEC_HESSIAN2_OLD } from './constants';
import type { BoltFrame } from './frame';
import { hi, hs, readInt, readString, skipValue, SkipState } from '../dubbo/hessian';

const CLASS = Buffer.from(CLASS_SOFA_REQUEST);
const METHOD = Buffer.from('methodName');
const skip = new SkipState();

/** Whether the hessian string at p is (in one chunk) the ASCII text `want`; no allocation. */
function stringIs(buf: Buffer, p: number, end: number, want: Buffer): boolean {
  const tag = buf[p];
  let len: number;
  let s: number;
  if (tag <= 0x1f) {
    len = tag;
    s = p + 1;
  } else if (tag >= 0x30 && tag <= 0x33) {
    len = ((tag - 0x30) << 8) | buf[p + 1];
    s = p + 2;
  } else if (tag === 0x53) {
    len = (buf[p + 1] << 8) | buf[p + 2];
    s = p + 3;
  } else return false;
  return len === want.length && s + len <= end && buf.compare(want, 0, len, s, s + len) === 0;
}

/** The SofaRequest's methodName in a hessian2 Bolt request, or undefined. */
export function sofaRequestMethod(buf: Buffer, f: BoltFrame): string | undefined {
  if (!f.isRequest || f.isHeartbeat || (f.codec !== CODEC_HESSIAN2 && f.codec !== CODEC_HESSIAN2_OLD)) return undefined;
  let p = f.contentStart;
  const end = f.contentEnd;
  if (p >= end) return undefined;
  const draft = buf[p] === 0x4f;
  skip.reset();
  if (draft) {
    // The type as an int length and raw bytes.
    p = readInt(buf, p + 1, end);
    if (p < 0 || hi.value !== CLASS.length || p + CLASS.length > end || buf.compare(CLASS, 0, CLASS.length, p, p + CLASS.length) !== 0) return undefined;
    p += CLASS.length;
  } else {
    if (buf[p] !== 0x43 || !stringIs(buf, p + 1, end, CLASS)) return undefined;
    p = skipValue(buf, p + 1, end, skip); // the class name
    if (p < 0) return undefined;
  }
  p = readInt(buf, p, end);
  const n = hi.value;
  if (p < 0 || n <= 0 || n > 64) return undefined;
  let at = -1;
  for (let i = 0; i < n; i++) {
    if (p >= end) return undefined;
    if (at < 0 && stringIs(buf, p, end, METHOD)) at = i;
    p = skipValue(buf, p, end, skip);
    if (p < 0) return undefined;
  }
  if (at < 0 || p >= end) return undefined;
  skip.classes.push(n); // definition 0, for objects among the skipped values
  const t = buf[p];
  if (t === 0x60 && !draft) p++;
  else if (t === (draft ? 0x6f : 0x4f)) {
    p = readInt(buf, p + 1, end);
    if (p < 0 || hi.value !== 0) return undefined;
  } else return undefined;
  for (let i = 0; i < at; i++) {
    p = skipValue(buf, p, end, skip);
    if (p < 0) return undefined;
  }
  p = readString(buf, p, end);
  return p < 0 || hs.value === null ? undefined : hs.value;
}
