// One process-wide handler for SIGINT/SIGTERM that drains every live server, then exits.

interface Drainable {
  shutdown(): Promise<void>;
}

const LIVE = new Set<Drainable>();
let installed = false;
let exiting = false;

function onSignal(signal: Deno.Signal): void {
  if (exiting) {
    // A second signal while draining: stop now.
    Deno.exit(signal === "SIGINT" ? 130 : 143);
  }
  exiting = true;
  Promise.allSettled([...LIVE].map((s) => s.shutdown())).finally(() => Deno.exit(0));
}

const SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];
const HANDLERS: Partial<Record<Deno.Signal, () => void>> = {};

/** Drains `server` on SIGINT/SIGTERM (then exits 0) until {@linkcode unwatchSignals}. */
export function watchSignals(server: Drainable): void {
  LIVE.add(server);
  if (installed || Deno.build.os === "windows") return;
  installed = true;
  for (const signal of SIGNALS) {
    const handler = HANDLERS[signal] ??= () => onSignal(signal);
    Deno.addSignalListener(signal, handler);
  }
}

/** Stops draining `server` on signals; the handlers go once no server needs them. */
export function unwatchSignals(server: Drainable): void {
  LIVE.delete(server);
  if (LIVE.size > 0 || !installed || exiting) return;
  installed = false;
  for (const signal of SIGNALS) {
    Deno.removeSignalListener(signal, HANDLERS[signal]!);
  }
}
