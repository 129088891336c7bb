/**
 * `cell vivaldi eval`: how well Vivaldi coordinates predict a real RTT matrix, and how often
 * they pick the nearest instance. `cell vivaldi status` and `cell vivaldi route <cell>`: what
 * this host's Vivaldi cell measured, and a cell's instances nearest first.
 *
 * @module
 */
import { type Command, InvalidArgumentError } from "commander";
import { evaluate, type EvaluateOptions } from "@cell/vivaldi/eval";
import { parseRttMatrix } from "@cell/vivaldi";
import { registerVivaldiQueries } from "./_vivaldi_queries.ts";
import { act, compactJson, type Context, EXIT_OK, positiveInteger } from "./_common.ts";

/** Flags of `cell vivaldi eval`. */
interface EvalFlags {
  matrix: string;
  nodes?: number;
  seed?: number;
  dimensions?: number;
  unit?: "s" | "ms" | "auto";
  json?: boolean;
}

function unitOf(text: string): "s" | "ms" | "auto" {
  if (text === "s" || text === "ms" || text === "auto") return text;
  throw new InvalidArgumentError(`--unit must be s, ms or auto, not '${text}'.`);
}

/** Adds `cell vivaldi` (with its `eval` subcommand) to `program`. */
export function registerVivaldi(program: Command, ctx: Context): void {
  const vivaldi = program
    .command("vivaldi")
    .summary("network coordinates: this host's, routes by RTT, and an evaluation tool")
    .description(
      "Vivaldi gives every host coordinates whose distances predict round-trip times, so that " +
        "clients can call the nearest instance.",
    );
  vivaldi
    .command("eval")
    .summary("simulate a measured RTT matrix and score the coordinates")
    .description(
      "Simulate the hosts of an RTT matrix (a TSV file: see ../shared/data/rtt/README.md), each " +
        "sampling RTTs to random peers with 2% noise until the coordinates converge, then print " +
        "the median and p90 relative error of the estimates, hit@3 and hit@10 (how often the " +
        "candidate with the lowest estimate among k random ones is truly the nearest) and " +
        "stretch@10 (chosen RTT / best RTT, median).",
    )
    .requiredOption("-m, --matrix <path>", "the RTT matrix (TSV)")
    .option("-n, --nodes <k>", "evaluate a random subset of k hosts", positiveInteger("--nodes"))
    .option("-s, --seed <n>", "seed of the simulation and of the subset", positiveInteger("--seed"))
    .option(
      "-d, --dimensions <n>",
      "Euclidean dimensions, besides the height (default 12)",
      positiveInteger("--dimensions"),
    )
    .option("-u, --unit <unit>", "unit of the matrix: s, ms or auto (default auto)", unitOf)
    .option(
      "--json",
      "print one line: {median_rel_error, p90_rel_error, hit_at_3, hit_at_10, stretch_at_10, rounds}",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ cell vivaldi eval --matrix ../shared/data/rtt/planetlab_1.tsv
  $ cell vivaldi eval --matrix ../shared/data/rtt/seattle_1.tsv --nodes 50 --seed 2 --json`,
    )
    .action((flags: EvalFlags) =>
      act(ctx, { json: flags.json }, async () => {
        let text: string;
        try {
          text = await Deno.readTextFile(flags.matrix);
        } catch (e) {
          throw new TypeError(
            `Cannot read the matrix '${flags.matrix}' (${(e as Error).message}): ` +
              "give the path of a TSV file",
          );
        }
        const options: EvaluateOptions = {};
        if (flags.nodes !== undefined) options.nodes = flags.nodes;
        if (flags.seed !== undefined) options.seed = flags.seed;
        if (flags.dimensions !== undefined) options.dimensions = flags.dimensions;
        if (flags.unit !== undefined) options.unit = flags.unit;
        const result = evaluate(parseRttMatrix(text), options);
        if (flags.json) {
          ctx.io.stdout(compactJson(result));
        } else {
          for (const [k, v] of Object.entries(result)) ctx.io.stdout(`${k.padEnd(18)} ${v}\n`);
        }
        return EXIT_OK;
      })
    );
  registerVivaldiQueries(vivaldi, ctx);
}
