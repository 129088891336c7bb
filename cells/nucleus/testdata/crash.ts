// A cell that crashes as soon as it starts, for the supervisor's backoff tests.
console.error("crash: failing on purpose");
Deno.exit(3);
