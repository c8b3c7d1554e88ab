/**
 * Subject alt name matching for upstream certificates (Envoy match_subject_alt_names): the peer
 * is accepted when one of its SANs of the matcher's type matches one matcher.
 */
import type * as tls from 'node:tls';
import type { SanMatcher } from '../config/types';

const TYPES: Readonly<Record<string, NonNullable<SanMatcher['sanType']>>> = {
  DNS: 'DNS', URI: 'URI', email: 'EMAIL', 'IP Address': 'IP_ADDRESS',
};

/** The SANs of a certificate as [type, value] (Node's `subjectaltname`: `DNS:a, URI:"b,c"`). */
export function certSans(cert: tls.PeerCertificate): [string, string][] {
  const s = cert.subjectaltname ?? '';
  const out: [string, string][] = [];
  const re = /(DNS|URI|email|IP Address|[A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (let m = re.exec(s); m !== null && m[0] !== ''; m = re.exec(s)) {
    const t = TYPES[m[1]];
    if (t === undefined) continue;
    let v = m[2];
    if (v.startsWith('"')) {
      try {
        v = JSON.parse(v) as string;
      } catch {
        continue;
      }
    }
    out.push([t, v]);
  }
  return out;
}

function one(m: SanMatcher, v: string): boolean {
  switch (m.kind) {
    case 'exact': return v === m.value;
    case 'prefix': return v.startsWith(m.value);
    case 'suffix': return v.endsWith(m.value);
    default: return v.includes(m.value);
  }
}

/** Whether a certificate passes the matchers (some SAN matches some matcher). */
export function sanMatches(cert: tls.PeerCertificate, matchers: readonly SanMatcher[]): boolean {
  const sans = certSans(cert);
  return matchers.some((m) => sans.some(([t, v]) => (m.sanType === undefined || m.sanType === t) && one(m, v)));
}
