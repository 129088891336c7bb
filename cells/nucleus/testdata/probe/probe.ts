// A cell for the supervisor's tests: reports its identity and whether it could read a secret
// file and open a TCP connection, then runs until SIGTERM.
//   deno run probe.ts [tcp-port] [path]
const port = Number(Deno.args[0] ?? "9");
const secret = Deno.args[1] ?? "/etc/shadow";

const id = Deno.env.get("CELL_INSTANCE_ID");
console.log(`probe ${id} node=${Deno.env.get("CELL_NODE_ID")} home=${Deno.env.get("CELL_HOME")}`);
console.error(`probe ${id} writes to stderr too`);

try {
  await Deno.readTextFile(secret);
  console.log(`read ${secret}: allowed`);
} catch (e) {
  console.log(`read ${secret}: refused (${(e as Error).name})`);
}

try {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.close();
  console.log(`tcp 127.0.0.1:${port}: allowed`);
} catch (e) {
  console.log(`tcp 127.0.0.1:${port}: refused (${(e as Error).name})`);
}

// Inside bubblewrap the probe is pid 1, which ignores signals it has no handler for.
Deno.addSignalListener("SIGTERM", () => {
  console.log(`probe ${id} stopping`);
  Deno.exit(0);
});
console.log(`probe ${id} ready`);
setInterval(() => {}, 60_000);
