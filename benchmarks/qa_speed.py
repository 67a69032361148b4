"""The QA stage's tokens/s against llama.cpp's own for the same model and context, in one run.

The QA stage runs twice on the same clips with the same requests (fresh request cache each time):
as before issue 16 (`prefix_cache_mb=0`: each prompt read whole unless it starts like the one just
before; `grammar_check_first=false`: the grammar checked against the whole vocabulary at every
token) and with the defaults (saved prefixes, requests ordered by prefix, grammar checked after
the choice). llama.cpp's own prompt and generation rates are
measured before and after (llama-bench style, `cpqa.llm.bench.engine_rates`); their mean prices the
stage's token mix: `llamacpp_tokens_per_s = tokens / (prompt/pp + completion/tg)`. The stage's
`tokens_per_s = tokens / LLM seconds` (model loading excluded; prompt tokens counted whole, read or
reused). Target: ratio ≥ 0.8. The clips come from a finished run (`CPQA_BENCH_QA_RUN`, default the
demo's `demo-run`), or the demo excerpt is built up to its clips first.

    python -m benchmarks.run qa
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GREEDY = ["qa.temperature=0"]
"""Both runs decode greedily, so they send the same requests (sampled replies would differ, and so
would every request that follows from them)."""
DEMO_OVERRIDES = ["qa.counts.CE=0", "qa.counts.CG=0", "qa.counts.EMP=0", "qa.multi_turn=0"]  # the Makefile's DEMO_SET


def clips_run(work: Path) -> Path:
    source = Path(os.environ.get("CPQA_BENCH_QA_RUN", ROOT / "demo-run"))
    if (source / "run.json").is_file() and any(source.glob("*-clips-*/_SUCCESS")):
        return source
    from cpqa.run import build

    run = work / "qa-clips"
    build(ROOT / "examples" / "ami_excerpt", run, overrides=DEMO_OVERRIDES, until="clips")
    return run


def run_qa(spec: dict, source: Path, target: Path, llm_options: list[str]) -> dict:
    """Copy `source`'s stages before qa into `target`, run the qa stage of the run described by
    `spec` (its run.json) with `llm_options` (`name=value`), return the stage's stats."""
    from cpqa.run import build

    target.mkdir(parents=True)
    for stage in json.loads((source / "run.json").read_text())["stages"]:
        if stage["name"] == "qa":
            break
        shutil.copytree(source / stage["dir"], target / stage["dir"])
    build(spec["input"], target, recipe=spec["recipe"], until="qa",
          overrides=[*spec["overrides"], *GREEDY, *(f"qa.llm.{option}" for option in llm_options)])
    return json.loads(next(target.glob("*-qa-*/stats.json")).read_text())


def measure(work: Path) -> dict:
    from cpqa.llm.bench import engine_rates
    from cpqa.recipe import load_recipe

    source = clips_run(work)
    spec = json.loads((source / "run.json").read_text())
    llm = next(s for s in load_recipe(spec["recipe"], spec["overrides"]).stages if s.name == "qa").config.llm.options
    load_before = os.getloadavg()[0]
    before = engine_rates(llm.model, llm.n_ctx, llm.n_threads)
    if os.environ.get("CPQA_BENCH_QA_CALLS"):  # one line per llama.cpp call on stderr
        logging.basicConfig(format="%(message)s")
        logging.getLogger("cpqa.llm.llamacpp").setLevel(logging.DEBUG)
    stats = {"before": run_qa(spec, source, work / "qa-before", ["prefix_cache_mb=0", "grammar_check_first=false"])}
    # from the first copy: stages it had to redo (a stale source) are not redone
    stats["now"] = run_qa(spec, work / "qa-before", work / "qa-now",
                          [f"prefix_cache_mb={llm.prefix_cache_mb or 256}", "grammar_check_first=true"])
    after = engine_rates(llm.model, llm.n_ctx, llm.n_threads)
    mean = replace(before, prompt_tokens_per_s=(before.prompt_tokens_per_s + after.prompt_tokens_per_s) / 2,
                   gen_tokens_per_s=(before.gen_tokens_per_s + after.gen_tokens_per_s) / 2)
    out: dict = {"model": llm.model, "n_ctx": llm.n_ctx, "cores": os.cpu_count(),
                 "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                 "llamacpp": {"prompt_tokens_per_s": [round(before.prompt_tokens_per_s, 1),
                                                      round(after.prompt_tokens_per_s, 1)],
                              "gen_tokens_per_s": [round(before.gen_tokens_per_s, 2), round(after.gen_tokens_per_s, 2)]}}
    for name, s in stats.items():
        c = s["counters"]
        prompt, completion, llm_s = c["llm_prompt_tokens"], c["llm_completion_tokens"], c["llm_latency_s"]
        reference_s = mean.seconds(prompt, completion)
        out[name] = {"stage_wall_s": s["wall_s"], "llm_s": llm_s, "calls": c["llm_calls"], "prompt_tokens": prompt,
                     "completion_tokens": completion, "prompt_tokens_reused": c.get("llm_prompt_tokens_reused", 0),
                     "prefix_hit_rate": round(c.get("llm_prompt_tokens_reused", 0) / max(prompt, 1), 3),
                     "tokens_per_s": round((prompt + completion) / llm_s, 2),
                     "llamacpp_tokens_per_s": round((prompt + completion) / reference_s, 2),
                     "ratio": round(reference_s / llm_s, 3)}
    out["speedup_stage_wall"] = round(stats["before"]["wall_s"] / stats["now"]["wall_s"], 2)
    return out
