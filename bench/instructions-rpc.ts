// User-space instructions per request of the sidecar at a LOW fixed Bolt or Dubbo rate, counted
// by callgrind: the per-wakeup cost of issue #15 (each request is its own loop iteration on each
// side), in a figure that a loaded machine does not change. Kernel work is not counted (compare
// syscalls per request with bench/rpc-wakeups.ts).
//
//   node dist/bench/instructions-rpc.js [bolt|dubbo] [ROOT...]    ROOT: checkouts with dist/ built
//
// Env: RATE (100 req/s over C=50 connections: ~2 requests/s each, every request alone in its
// iteration), WARM (30 s of warm-up: JIT tiers settle under valgrind), SECONDS (20 counted),
// KEEP (a directory: the counted callgrind dump is copied there, for callgrind_annotate).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { runLoad, startBackend } from './load/run';
import { outriggerConfig } from './peers/configs';
import { freePort, waitForPort } from './lib/net';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const mode: 'bolt' | 'dubbo' = argv[0] === 'dubbo' ? 'dubbo' : 'bolt';
  const roots = argv.filter((a) => a !== 'bolt' && a !== 'dubbo');
  if (roots.length === 0) roots.push(path.join(__dirname, '..', '..'));
  const rate = Number(process.env.RATE ?? 100);
  const conns = Number(process.env.C ?? 50);
  const warmS = Number(process.env.WARM ?? 30);
  const seconds = Number(process.env.SECONDS ?? 20);
  const backend = await startBackend();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'instr-rpc-'));
  try {
    for (const root of roots) {
      const port = await freePort();
      const cfg = path.join(tmp, 'cfg.json');
      fs.writeFileSync(cfg, JSON.stringify(outriggerConfig({ mode, port, backendPort: backend.ports[mode], dir: tmp })));
      const out = path.join(tmp, 'cg.%p');
      const vg = spawn(
        'valgrind',
        ['--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${out}`, process.execPath, 'dist/src/cli.js', 'start', '-c', cfg, '--workers', '1', '--log-level', 'warn'],
        { cwd: root, stdio: 'ignore' },
      );
      try {
        await waitForPort(port, { timeoutMs: 120_000 });
        const load = runLoad(
          {
            kind: mode === 'bolt' ? 'bolt-rate' : 'dubbo-rate',
            host: '127.0.0.1',
            port,
            connections: conns,
            threads: 1,
            messageSize: 1024,
            rate,
            // The generator runs on past the counted window: the closing of its connections at its
            // end (FIN reads, teardown) is not per-request work.
            durationMs: (seconds + 4) * 1000,
            proxyPids: [vg.pid as number],
            backendPids: [backend.pid],
          },
          warmS * 1000,
        );
        // runLoad's window starts 300 ms + warm-up after the generator's start.
        await sleep(300 + warmS * 1000);
        spawnSync('callgrind_control', ['--zero', String(vg.pid)], { stdio: 'ignore' });
        await sleep(seconds * 1000);
        spawnSync('callgrind_control', ['--dump=counted', String(vg.pid)], { stdio: 'ignore' });
        const r = await load;
        await sleep(1000);
        let ir = 0;
        let readPath = 0;
        for (const f of fs.readdirSync(tmp)) {
          if (!f.startsWith(`cg.${vg.pid}`)) continue;
          const m = /^summary: (\d+)/m.exec(fs.readFileSync(path.join(tmp, f), 'utf8'));
          if (m && /counted/.test(fs.readFileSync(path.join(tmp, f), 'utf8').slice(0, 2000))) {
            ir = Number(m[1]);
            // The whole process's count moves with GC helper threads and timers; the read path
            // (the addon's check callback: reads, JS, writes) is the per-wakeup work itself.
            const ann = spawnSync('callgrind_annotate', ['--inclusive=yes', path.join(tmp, f)], { encoding: 'utf8', maxBuffer: 64 << 20 });
            const line = (ann.stdout ?? '').split('\n').find((l) => /OnCheck\(uv_check_s\*\)/.test(l));
            if (line !== undefined) readPath = Number(line.trim().split(' ')[0].replace(/,/g, ''));
            if (process.env.KEEP) fs.copyFileSync(path.join(tmp, f), path.join(process.env.KEEP, `callgrind.${mode}.${path.basename(root)}.${vg.pid}`));
          }
        }
        // Open loop: the counted window saw rate x seconds requests (the generator checks that
        // every request was answered: errors say otherwise).
        const counted = rate * seconds;
        process.stdout.write(
          `${root}: ${mode} ${rate}/s over ${conns} connections: ${counted} requests counted (${r.errors} errors in the run${r.firstError ? `: ${r.firstError}` : ""}), ` +
            `${Math.round(ir / counted)} instructions per request (user space, all threads), ` +
            `${Math.round(readPath / counted)} of them on the native read path (OnCheck, inclusive)\n`,
        );
      } finally {
        vg.kill('SIGTERM');
        await new Promise<void>((res) => (vg.exitCode !== null ? res() : vg.on('exit', () => res())));
        for (const f of fs.readdirSync(tmp)) if (f.startsWith('cg.')) fs.rmSync(path.join(tmp, f));
      }
    }
  } finally {
    await backend.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
