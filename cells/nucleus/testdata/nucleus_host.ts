// A stand-in nucleus process for the adoption test: deploys the probe on the home given as the
// first argument, prints the deployment as one JSON line, and runs until it is killed.
import { Supervisor } from "../supervisor.ts";
import { PROBE, SANDBOX, TIMING } from "./helpers.ts";

const [home, instances] = Deno.args;
const supervisor = new Supervisor({ home: home!, nodeId: "n7", timing: TIMING });
await supervisor.start();
await supervisor.deploy({
  cell: "probe",
  module: PROBE,
  instances: Number(instances),
  sandbox: SANDBOX,
});
while (supervisor.deployments()[0]!.status.some((s) => s.state !== "running")) {
  await new Promise((r) => setTimeout(r, 50));
}
console.log(JSON.stringify(supervisor.deployments()[0]));
