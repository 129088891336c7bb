// The generated Go and Rust clients against real cells, built with the real toolchains: every
// case of tests/conformance/cases.json, the wire vectors, discovery through a nucleus, and the
// seed's greeting. The conformance clients come from `cell generate -l go|rust` against the
// running cell, as a user would make them. Skipped when `go` or `cargo` is not installed. Cargo builds share one target
// directory under ${XDG_CACHE_HOME:-~/.cache}/cell/cargo-target (tests/conformance/setup_go_rust.sh
// warms it and the Go module cache).
import assert from "node:assert/strict";
import { schemaOf } from "@cell/sdk";
import { run as cellCli } from "@cell/cli";
import { goGenerator } from "../codegen/go.ts";
import { rustGenerator } from "../codegen/rust.ts";
import type { Generator } from "../codegen/plugin.ts";
import { MyService } from "../examples/my_service/service.ts";
import { generateRunners } from "./conformance/_generate_go_rust.ts";
import { type Child, spawnReady } from "./_helpers.ts";
import { quietNucleus } from "./_instances.ts";

const CACHE = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`;
const CARGO_TARGET_DIR = Deno.env.get("CARGO_TARGET_DIR") ?? `${CACHE}/cell/cargo-target`;
const CASES = new URL("./conformance/cases.json", import.meta.url).pathname;
const VECTORS = new URL("./vectors", import.meta.url).pathname;

async function installed(cmd: string): Promise<boolean> {
  try {
    return (await new Deno.Command(cmd, { args: ["version"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}
const HAS_GO = await installed("go");
const HAS_CARGO = await installed("cargo");

/** Runs `cmd` in `cwd`; fails the test with its output unless it exits 0. */
async function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    env: { CARGO_TARGET_DIR, ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `${cmd} ${args.join(" ")} failed:\n${text}`);
  return text;
}

const CASE_COUNT = (JSON.parse(await Deno.readTextFile(CASES)) as { cases: unknown[] }).cases
  .length;
const VECTOR_COUNT = (await Promise.all(
  ["msgpack", "frames", "ignored", "malformed"].map(async (f) =>
    (JSON.parse(await Deno.readTextFile(`${VECTORS}/${f}.json`)) as unknown[]).length
  ),
)).reduce((a, b) => a + b);

/** Asserts a runner's JSON lines: no failed check, and at least `atLeast` passed. */
function assertAllPassed(report: string, atLeast: number): void {
  const lines = report.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  const failed = lines.filter((l) => l.ok === false).map((l) => `${l.name}: ${l.error}`);
  assert.deepEqual(failed, [], report);
  const summary = lines.find((l) => l.summary === true);
  assert.ok(summary && summary.passed >= atLeast, `expected ${atLeast} checks:\n${report}`);
}

/** `cell --home <home> generate conformance -l <language> -o <dir>/<language>/client`. */
async function cellGenerate(home: string, language: string, dir: string): Promise<void> {
  let err = "";
  const args = ["--home", home, "generate", "conformance", "-l", language, "-o"];
  const code = await cellCli([...args, `${dir}/${language}/client`], {
    stdout: () => {},
    stderr: (t) => err += t,
  });
  assert.equal(code, 0, `cell generate -l ${language}: ${err}`);
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cell-go-rust-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `module` as a cell process in a fresh Cell home until `fn` is done. */
async function withCell(
  module: string,
  env: Record<string, string>,
  fn: (home: string) => Promise<void>,
): Promise<void> {
  await withTempDir(async (home) => {
    const cell: Child = await spawnReady(module, [], { CELL_HOME: home, ...env });
    try {
      await fn(home);
    } finally {
      await cell[Symbol.asyncDispose]();
    }
  });
}

async function buildGo(dir: string): Promise<string> {
  const go = `${dir}/go`;
  assert.equal((await run("gofmt", ["-l", "client"], go)).trim(), "", "gofmt -l lists files");
  await run("go", ["vet", "./..."], go);
  await run("go", ["build", "-o", "runner", "."], go);
  return `${go}/runner`;
}

async function buildRust(dir: string): Promise<string> {
  await run("cargo", ["build", "--quiet"], `${dir}/rust`);
  return `${CARGO_TARGET_DIR}/debug/conformance-runner`;
}

/**
 * The runners, built once per run of this file into one directory (removed when the module
 * unloads): the conformance tests build them around clients from `cell generate`, the discovery
 * test reuses them.
 */
const runners = new Map<string, Promise<string>>();
let workDir: string | undefined;
globalThis.addEventListener("unload", () => {
  if (workDir) Deno.removeSync(workDir, { recursive: true });
});

/** The runner of `language`, its client generated by `cell generate` against `home`'s cell. */
function runner(language: "go" | "rust", home?: string): Promise<string> {
  let built = runners.get(language);
  if (built === undefined) {
    built = (async () => {
      workDir ??= await Deno.makeTempDir({ prefix: "cell-go-rust-" });
      const dir = `${workDir}/${language}-build`;
      // Without a running cell (a filtered run), generate the client in process instead.
      await generateRunners(dir, home === undefined);
      if (home !== undefined) await cellGenerate(home, language, dir);
      return language === "go" ? await buildGo(dir) : await buildRust(dir);
    })();
    runners.set(language, built);
  }
  return built;
}

for (const [language, name, has] of [["go", "Go", HAS_GO], ["rust", "Rust", HAS_CARGO]] as const) {
  Deno.test({
    name: `the generated ${name} client passes every conformance case and the wire vectors`,
    ignore: !has,
    fn: () =>
      withCell("./conformance/cell.ts", { CELL_NUCLEUS: "0" }, async (home) => {
        const bin = await runner(language, home);
        assertAllPassed(await run(bin, ["vectors", VECTORS], home), VECTOR_COUNT);
        const env = { CELL_HOME: home };
        assertAllPassed(await run(bin, ["cases", CASES], home, env), CASE_COUNT + 1);
      }),
  });
}

Deno.test({
  name: "the generated Go and Rust clients find an instance through the nucleus",
  ignore: !HAS_GO || !HAS_CARGO,
  fn: () =>
    withTempDir(async (home) => {
      const bins = [await runner("go"), await runner("rust")];
      const nucleus = await quietNucleus(home);
      // An instance id puts the socket at run/conformance@1.sock: only discovery finds it.
      const cell = await spawnReady("./conformance/cell.ts", [], {
        CELL_HOME: home,
        CELL_INSTANCE_ID: "1",
      });
      try {
        for (const bin of bins) {
          const env = { CELL_HOME: home };
          assertAllPassed(await run(bin, ["cases", CASES], home, env), CASE_COUNT + 1);
        }
      } finally {
        await cell[Symbol.asyncDispose]();
        await nucleus.stop();
      }
    }),
});

const GREET_GO = `package main

import (
	"context"
	"fmt"
	"os"

	"myservice"
)

func main() {
	ctx := context.Background()
	client, err := myservice.Connect(ctx, myservice.Options{})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	defer client.Close()
	resp, err := client.Greet(ctx, myservice.Request{Name: "Go"})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println(resp.Greeting)
}
`;

const GREET_RUST = `use my_service::{Client, Options, Request};

#[tokio::main]
async fn main() {
    let client = Client::connect(Options::default()).await.expect("connect");
    let resp = client.greet(&Request { name: "Rust".into() }).await.expect("greet");
    println!("{}", resp.greeting);
}
`;

async function writeFiles(dir: string, gen: Generator): Promise<void> {
  for (const f of gen.generate(schemaOf("my-service", MyService), { version: "0.1.0" })) {
    const path = `${dir}/${f.path}`;
    await Deno.mkdir(path.replace(/\/[^/]*$/, ""), { recursive: true });
    await Deno.writeTextFile(path, f.contents);
  }
}

Deno.test({
  name: "the seed's greeting works from generated Go and Rust clients",
  ignore: !HAS_GO || !HAS_CARGO,
  fn: () =>
    withTempDir(async (dir) => {
      await writeFiles(`${dir}/go/myservice`, goGenerator);
      await Deno.writeTextFile(`${dir}/go/main.go`, GREET_GO);
      await Deno.writeTextFile(
        `${dir}/go/go.mod`,
        "module greet\n\ngo 1.22\n\nrequire (\n\tmyservice v0.0.0\n" +
          "\tgithub.com/vmihailenco/msgpack/v5 v5.4.1 // indirect\n" +
          "\tgithub.com/vmihailenco/tagparser/v2 v2.0.0 // indirect\n)\n\n" +
          "replace myservice => ./myservice\n",
      );
      await Deno.copyFile(`${dir}/go/myservice/go.sum`, `${dir}/go/go.sum`);
      await run("go", ["build", "-o", "greet", "."], `${dir}/go`);

      await writeFiles(`${dir}/rust/my_service`, rustGenerator);
      await Deno.mkdir(`${dir}/rust/src`, { recursive: true });
      await Deno.writeTextFile(`${dir}/rust/src/main.rs`, GREET_RUST);
      await Deno.writeTextFile(
        `${dir}/rust/Cargo.toml`,
        `[package]\nname = "greet"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n` +
          `my_service = { path = "my_service" }\ntokio = { version = "1", features = ["macros", "rt-multi-thread"] }\n`,
      );
      await run("cargo", ["build", "--quiet"], `${dir}/rust`);

      await withCell("../examples/my_service/main.ts", {}, async (home) => {
        const env = { CELL_HOME: home };
        assert.equal((await run(`${dir}/go/greet`, [], dir, env)).trim(), "Hello, Go!");
        const rust = `${CARGO_TARGET_DIR}/debug/greet`;
        assert.equal((await run(rust, [], dir, env)).trim(), "Hello, Rust!");
      });
    }),
});
