/** Listener stat offsets of the overload manager (names appended to LISTENER_STATS in src/stats/layout.ts). */
import { LISTENER_STATS } from '../stats/layout';

function at(name: string): number {
  const i = (LISTENER_STATS as readonly string[]).indexOf(name);
  if (i < 0) throw new Error(`stats layout lacks ${name}`);
  return i;
}

export const OL = {
  CX_REJECT: at('downstream_cx_overload_reject'),
  RQ_SHED: at('downstream_rq_overload_shed'),
  CX_IDLE_CLOSED: at('downstream_cx_overload_idle_closed'),
} as const;
