/**
 * Test PKI made at test time with the `openssl` CLI (no keys are committed): CAs, server
 * certificates with DNS/IP SANs (ECDSA P-256 or RSA-2048), client certificates with a SPIFFE
 * URI SAN. Everything goes into a fresh temp directory.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
  /** Serial as openssl prints it (uppercase hex). */
  readonly serial: string;
}

export interface IssueOptions {
  readonly cn: string;
  readonly dns?: readonly string[];
  readonly ips?: readonly string[];
  readonly uris?: readonly string[];
  readonly kind?: 'ec' | 'rsa';
  readonly usage?: 'server' | 'client';
  /** Issuing CA; default the PKI's main CA. */
  readonly ca?: CertFiles;
  readonly serial?: number;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

let serialSeq = 0x1000;

export class Pki {
  readonly dir: string;
  readonly ca: CertFiles;
  private n = 0;

  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outrigger-pki-'));
    this.ca = this.makeCa('Outrigger Test CA');
  }

  makeCa(cn: string): CertFiles {
    const base = path.join(this.dir, `ca${this.n++}`);
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${base}.key`], this.dir);
    const serial = (serialSeq++).toString(16).toUpperCase();
    openssl(
      ['req', '-new', '-x509', '-key', `${base}.key`, '-subj', `/CN=${cn}`, '-days', '3', '-set_serial', `0x${serial}`, '-out', `${base}.crt`,
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
      this.dir,
    );
    return { cert: `${base}.crt`, key: `${base}.key`, serial };
  }

  issue(o: IssueOptions): CertFiles {
    const base = path.join(this.dir, `leaf${this.n++}`);
    if ((o.kind ?? 'ec') === 'rsa') openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', `${base}.key`], this.dir);
    else openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${base}.key`], this.dir);
    openssl(['req', '-new', '-key', `${base}.key`, '-subj', `/CN=${o.cn}`, '-out', `${base}.csr`], this.dir);
    const sans = [...(o.dns ?? []).map((d) => `DNS:${d}`), ...(o.ips ?? []).map((i) => `IP:${i}`), ...(o.uris ?? []).map((u) => `URI:${u}`)];
    const usage = o.usage ?? 'server';
    const ext = [
      '[v3]',
      'basicConstraints=CA:FALSE',
      `keyUsage=critical,digitalSignature${usage === 'server' && o.kind === 'rsa' ? ',keyEncipherment' : ''}`,
      `extendedKeyUsage=${usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
      ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
    ].join('\n');
    fs.writeFileSync(`${base}.ext`, `${ext}\n`);
    const ca = o.ca ?? this.ca;
    const serial = (o.serial ?? serialSeq++).toString(16).toUpperCase();
    openssl(
      ['x509', '-req', '-in', `${base}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${serial}`, '-days', '2', '-extfile', `${base}.ext`,
        '-extensions', 'v3', '-out', `${base}.crt`],
      this.dir,
    );
    return { cert: `${base}.crt`, key: `${base}.key`, serial };
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Serial (uppercase hex, no leading zeros) of the first certificate in a PEM text. */
export function serialOf(pem: string): string {
  return new crypto.X509Certificate(pem).serialNumber.replace(/^0+/, '').toUpperCase();
}

/** The base64 body lines of a PEM private key (what must never leak). */
export function keyBody(keyPath: string): string[] {
  return fs
    .readFileSync(keyPath, 'utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('-----'));
}

/** Replaces a file atomically (write + rename), as secret volume updates do. */
export function replaceFile(target: string, from: string): void {
  const tmp = `${target}.tmp${process.pid}`;
  fs.copyFileSync(from, tmp);
  fs.renameSync(tmp, target);
}

export interface SClientResult {
  /** Exit code of openssl s_client. */
  readonly code: number | null;
  readonly out: string;
  /** The server's leaf certificate as s_client printed it, if the handshake got that far. */
  readonly serverCert: string | null;
}

/**
 * Runs `openssl s_client` against 127.0.0.1:port, writes `input` once connected, then closes
 * stdin. A real peer: OpenSSL's own client, not Node's.
 */
export function sClient(port: number, args: readonly string[], input = '', waitMs = 800): Promise<SClientResult> {
  return new Promise((resolve) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.stdin.on('error', () => {});
    setTimeout(() => p.stdin.write(input), 300);
    setTimeout(() => p.stdin.end(), 300 + waitMs);
    const kill = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.on('close', (code) => { // after the pipes drained ('exit' can come before the last output)
      clearTimeout(kill);
      const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out);
      resolve({ code, out, serverCert: m ? m[0] : null });
    });
  });
}
