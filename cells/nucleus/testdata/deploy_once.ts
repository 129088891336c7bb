// Deploys the probe (sandboxed) on the home given as the first argument and prints the error
// or the sandbox used, for tests that change PATH (which bubblewrap is found) in a process of
// their own.
import { Supervisor } from "../supervisor.ts";
import { PROBE } from "./helpers.ts";

const supervisor = new Supervisor({ home: Deno.args[0]!, nodeId: "n7" });
await supervisor.start();
try {
  console.log((await supervisor.deploy({ cell: "probe", module: PROBE, instances: 1 })).sandbox);
} catch (e) {
  console.log(String(e));
}
await supervisor.shutdown({ stopInstances: true });
