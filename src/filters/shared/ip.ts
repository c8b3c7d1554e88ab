/**
 * CIDR matching on request addresses in plain JavaScript: node's net.BlockList.check costs
 * about 1.5 µs a call (a trip into C++ with a SocketAddress), a parse and a compare here a few
 * tens of nanoseconds. IPv4 (and IPv4-mapped IPv6 "::ffff:a.b.c.d", matched as IPv4) and IPv6.
 */

/** Scratch words of the last parse (one per thread; nothing is allocated per IPv4 check). */
const words = new Uint32Array(4);

/** IPv4 dotted quad -> uint32, or -1. */
export function parseV4(s: string, from = 0): number {
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      v = v * 256 + part;
      part = 0;
      digits = 0;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return v * 256 + part;
}

/** IPv6 -> `out` (4 big-endian words); false when not IPv6. Allocates (IPv6 only). */
export function parseV6(s: string, out: Uint32Array): boolean {
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  const dc = s.indexOf('::');
  if (dc >= 0 && s.indexOf('::', dc + 1) >= 0) return false;
  const headS = dc >= 0 ? s.slice(0, dc) : s;
  const tailS = dc >= 0 ? s.slice(dc + 2) : '';
  const lists = [headS === '' ? [] : headS.split(':'), tailS === '' ? [] : tailS.split(':')];
  // An embedded IPv4 address may only end the text.
  const lastList = dc >= 0 ? 1 : 0;
  const parts: number[][] = [[], []];
  for (let k = 0; k < 2; k++) {
    const list = lists[k];
    for (let i = 0; i < list.length; i++) {
      const g = list[i];
      if (g.indexOf('.') >= 0) {
        const v4 = k === lastList && i === list.length - 1 ? parseV4(g) : -1;
        if (v4 < 0) return false;
        parts[k].push(v4 >>> 16, v4 & 0xffff);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) parts[k].push(parseInt(g, 16));
      else return false;
    }
  }
  const n = parts[0].length + parts[1].length;
  if (dc < 0 ? n !== 8 : n > 7) return false;
  const groups = [...parts[0], ...new Array<number>(8 - n).fill(0), ...parts[1]];
  for (let i = 0; i < 4; i++) out[i] = ((groups[2 * i] << 16) | groups[2 * i + 1]) >>> 0;
  return true;
}

/** The IPv4 inside an IPv4-mapped IPv6 text ("::ffff:1.2.3.4"), else -1. */
function mappedV4(s: string): number {
  if (s.length > 7 && (s.startsWith('::ffff:') || s.startsWith('::FFFF:'))) return parseV4(s, 7);
  return -1;
}

/** An IPv4 text, or an IPv4-mapped IPv6 one, as a uint32; -1 for anything else. */
export function ipv4Of(s: string): number {
  const x = parseV4(s);
  return x >= 0 ? x : mappedV4(s);
}

/** An IPv4 CIDR range as [network, mask] (uint32), or null when the address is not IPv4. */
export function v4Range(address: string, prefixLen: number): [number, number] | null {
  const v4 = parseV4(address);
  if (v4 < 0) return null;
  const mask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
  return [(v4 & mask) >>> 0, mask];
}

/** A compiled CIDR range: test(ip text) -> inside. */
export function cidrMatcher(address: string, prefixLen: number): (ip: string) => boolean {
  const v4 = parseV4(address);
  if (v4 >= 0) {
    const mask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
    const net4 = (v4 & mask) >>> 0;
    // The last text parsed: the requests of a connection (and the policies of one request) ask about the same one.
    let lastIp = '';
    let lastX = -1;
    return (ip) => {
      let x = lastX;
      if (ip !== lastIp) {
        x = parseV4(ip);
        if (x < 0) x = mappedV4(ip);
        lastIp = ip;
        lastX = x;
      }
      return x >= 0 && ((x & mask) >>> 0) === net4;
    };
  }
  const base = new Uint32Array(4);
  if (!parseV6(address, base)) return () => false;
  const masks = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    const bits = Math.max(0, Math.min(32, prefixLen - 32 * i));
    masks[i] = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    base[i] = (base[i] & masks[i]) >>> 0;
  }
  return (ip) => {
    if (ip.indexOf(':') < 0 || !parseV6(ip, words)) return false;
    for (let i = 0; i < 4; i++) if (((words[i] & masks[i]) >>> 0) !== base[i]) return false;
    return true;
  };
}
