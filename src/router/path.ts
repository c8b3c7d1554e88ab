/**
 * The request target as the router sees it, Envoy-style, before any route is matched:
 *
 *   absolute-form  `GET http://host:port/p?q HTTP/1.1`: the URI's authority replaces Host and the
 *                  path is routed and forwarded in origin form (RFC 9112 3.2.2); other schemes or
 *                  userinfo (`http://u@h/`) are refused with 400.
 *   escaped slashes  `%2F` `%5C` (path_with_escaped_slashes_action): keep (default, as Envoy),
 *                  reject (400), unescape-and-forward, unescape-and-redirect (307 to the
 *                  unescaped path; gRPC requests are refused instead, as Envoy).
 *   normalize_path (default on): `\` -> `/`; %XX of an unreserved character (A-Z a-z 0-9 - . _ ~)
 *                  decoded; dot segments removed (RFC 3986 5.2.4; `..` never climbs above `/`).
 *   merge_slashes (default on): `//` -> `/`.
 *
 * The query is never touched. The normalized path is what is routed and what goes upstream, so
 * the route that decided and the upstream see the same resource (`/x/../admin`, `/%61dmin`,
 * `//admin`, `/public/%2e%2e/admin` all route as `/admin`).
 *
 * Cost: a common path is scanned once, char by char, and returned as is (no allocation); only a
 * path that needs a change is rebuilt.
 */

export const enum EscapedSlashes {
  Keep,
  Reject,
  UnescapeAndRedirect,
  UnescapeAndForward,
}

export interface PathOptions {
  readonly normalize: boolean;
  readonly mergeSlashes: boolean;
  readonly escapedSlashes: EscapedSlashes;
}

export const DEFAULT_PATH_OPTIONS: PathOptions = Object.freeze({ normalize: true, mergeSlashes: true, escapedSlashes: EscapedSlashes.Keep });

/** Envoy's enum names (http_connection_manager.path_with_escaped_slashes_action). */
export const ESCAPED_SLASHES_ACTIONS: Readonly<Record<string, EscapedSlashes>> = {
  KEEP_UNCHANGED: EscapedSlashes.Keep,
  IMPLEMENTATION_SPECIFIC_DEFAULT: EscapedSlashes.Keep,
  REJECT_REQUEST: EscapedSlashes.Reject,
  UNESCAPE_AND_REDIRECT: EscapedSlashes.UnescapeAndRedirect,
  UNESCAPE_AND_FORWARD: EscapedSlashes.UnescapeAndForward,
};

/** The outcome when the target is not used as is: 400, or a redirect to `location` (a path). */
export interface TargetRefusal {
  readonly status: 400 | 307;
  readonly location: string;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/** The byte a `%XX` at s[i] encodes, or -1. */
function pctAt(s: string, i: number): number {
  if (i + 2 >= s.length) return -1;
  const h = hexVal(s.charCodeAt(i + 1));
  const l = hexVal(s.charCodeAt(i + 2));
  return h < 0 || l < 0 ? -1 : h * 16 + l;
}

function unreserved(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
}

const SLASH = 0x2f;
const DOT = 0x2e;
const BACKSLASH = 0x5c;
const PCT = 0x25;

/** Whether p[0, end) has an escaped slash or backslash. */
function hasEscapedSlash(p: string, end: number): boolean {
  for (let i = p.indexOf('%'); i >= 0 && i < end; i = p.indexOf('%', i + 1)) {
    const b = pctAt(p, i);
    if (b === SLASH || b === BACKSLASH) return true;
  }
  return false;
}

/** Whether normalize/merge would change p[0, end) (the fast scan; no allocation). */
function needsWork(p: string, end: number, o: PathOptions): boolean {
  for (let i = 0; i < end; i++) {
    const c = p.charCodeAt(i);
    if (c === SLASH) {
      const n = p.charCodeAt(i + 1); // NaN past the end
      if (n === SLASH && o.mergeSlashes) return true;
      if (n === DOT && o.normalize) {
        const n2 = p.charCodeAt(i + 2);
        if (i + 2 === end || n2 === SLASH || n2 === BACKSLASH) return true; // "/." segment
        if (n2 === DOT && (i + 3 === end || p.charCodeAt(i + 3) === SLASH || p.charCodeAt(i + 3) === BACKSLASH)) return true; // "/.."
      }
    } else if (o.normalize && (c === BACKSLASH || (c === PCT && unreserved(pctAt(p, i))))) {
      return true;
    }
  }
  return false;
}

/** Escaped slashes and backslashes decoded to `/`. */
function unescapeSlashes(p: string): string {
  return p.replace(/%(2f|5c)/gi, '/');
}

/** RFC 3986 5.2.4 on a path that starts with `/`, after decoding unreserved escapes and `\`. */
function rebuild(p: string, o: PathOptions): string {
  let s = p;
  if (o.normalize) {
    let d = '';
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === BACKSLASH) d += '/';
      else if (c === PCT) {
        const b = pctAt(s, i);
        if (unreserved(b)) {
          d += String.fromCharCode(b);
          i += 2;
        } else d += '%';
      } else d += s[i];
    }
    s = d;
  }
  const segs = s.split('/'); // segs[0] is '' (the path starts with '/')
  const out: string[] = [];
  const last = segs.length - 1;
  let trailingSlash = false;
  for (let i = 1; i <= last; i++) {
    const seg = segs[i];
    if (o.normalize && seg === '.') {
      trailingSlash = i === last;
      continue;
    }
    if (o.normalize && seg === '..') {
      out.pop();
      trailingSlash = i === last;
      continue;
    }
    if (seg === '' && o.mergeSlashes && i !== last) continue;
    out.push(seg);
    trailingSlash = false;
  }
  let r = '/' + out.join('/');
  if (trailingSlash && !r.endsWith('/')) r += '/';
  return r;
}

/**
 * The origin-form target to route and forward: `url` itself when nothing changes (the common
 * case, no allocation), the normalized one, or a refusal. `url` is origin-form (path and query);
 * other forms (`*`, absolute-form already split by `absoluteForm`) are returned as is.
 */
export function normalizeTarget(url: string, o: PathOptions): string | TargetRefusal {
  if (url.charCodeAt(0) !== SLASH) return url;
  const q = url.indexOf('?');
  const end = q < 0 ? url.length : q;
  let redirect = false;
  let p: string;
  if (o.escapedSlashes !== EscapedSlashes.Keep && hasEscapedSlash(url, end)) {
    if (o.escapedSlashes === EscapedSlashes.Reject) return { status: 400, location: '' };
    p = unescapeSlashes(url.slice(0, end));
    redirect = o.escapedSlashes === EscapedSlashes.UnescapeAndRedirect;
  } else if (!needsWork(url, end, o)) {
    return url; // the common case: no copy
  } else {
    p = url.slice(0, end);
  }
  const n = rebuild(p, o);
  const full = q < 0 ? n : n + url.slice(q);
  return redirect ? { status: 307, location: full } : full;
}

/** An absolute-form target split: the authority and the origin-form rest. */
export interface AbsoluteTarget {
  readonly authority: string;
  readonly url: string;
}

/**
 * `http://authority/path?q` -> {authority, url: '/path?q'}; null when `url` is not absolute-form;
 * 400 when it is absolute but unusable (another scheme, userinfo, an empty host).
 */
export function absoluteForm(url: string): AbsoluteTarget | null | 400 {
  const c = url.charCodeAt(0);
  if (c === SLASH || url === '*') return null;
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(url);
  if (m === null) return 400;
  const scheme = m[1].toLowerCase();
  const authority = m[2];
  if ((scheme !== 'http' && scheme !== 'https') || authority === '' || authority.includes('@')) return 400;
  const rest = m[3];
  return { authority, url: rest === '' ? '/' : rest.charCodeAt(0) === SLASH ? rest : '/' + rest };
}

/** A target that is not the downstream's as is (allocated only then). */
export interface ResolvedTarget {
  /** Origin-form target to route and forward (for 307: the Location). */
  readonly url: string;
  /** The authority to route by (absolute-form: the URI's, else the Host / :authority given). */
  readonly authority: string;
  /** 0: use it; 400: refuse the request; 307: redirect to `url` (escaped slashes unescaped). */
  readonly status: 0 | 400 | 307;
}

/**
 * What the router routes for a downstream request: the url itself when it needs no change (the
 * common case: the same string back, no allocation), else the absolute-form split and the
 * normalized path, or a refusal. Every HTTP downstream (h1 engines, h2) goes through this.
 */
export function resolveTarget(url: string, authority: string, o: PathOptions): string | ResolvedTarget {
  const abs = url.charCodeAt(0) === SLASH ? null : absoluteForm(url);
  if (abs === 400) return { url, authority, status: 400 };
  const origin = abs === null ? url : abs.url;
  const host = abs === null ? authority : abs.authority;
  const n = normalizeTarget(origin, o);
  if (typeof n !== 'string') return { url: n.status === 307 ? n.location : origin, authority: host, status: n.status };
  return abs === null && n === url ? url : { url: n, authority: host, status: 0 };
}
