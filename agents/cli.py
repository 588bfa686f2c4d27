"""``skytwin train`` and ``skytwin evaluate``, added to the ``skytwin`` command through the
``skytwin.commands`` entry points (the twin's CLI never imports ``agents``).

Each ``register_*`` function adds one subcommand to the parser's subparsers; the heavy
imports (torch, SB3, Ray) happen only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from twin.errors import ConfigError

# envs.network_env.DEFAULT_SCENARIO, without importing gymnasium for every `skytwin` call
DEFAULT_SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "global-3site.yaml"


def register_train(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a scheduler (MaskablePPO, RLlib PPO, or "
                              "the CMA-ES candidate scorer)")  # fmt: skip
    p.add_argument("--algo", choices=["ppo", "rllib-ppo", "cma-es"], default="ppo",
                   help="ppo: sb3-contrib MaskablePPO on skytwin/Network-v0 (one agent); "
                        "rllib-ppo: RLlib PPO, one agent per telescope; cma-es: greedy's "
                        "score plus learned feature weights, searched on whole nights")  # fmt: skip
    p.add_argument("--scenario", default=str(DEFAULT_SCENARIO), help="scenario YAML file")
    p.add_argument("--steps", type=int, default=200_000, help="env steps in all")
    p.add_argument("--init-from", metavar="MODEL", help="continue training this model.zip (ppo) "
                   "or RLlib checkpoint folder (rllib-ppo), both unpickled: only files you "
                   "wrote yourself; or start the search at this scorer.json (cma-es)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output folder (default runs/ALGO-NAME-sSEED)")
    p.add_argument("--start", help="fixed date YYYY-MM-DD (default: the scenario's, or "
                   "2027-04-07 when it says 'tonight')")  # fmt: skip
    p.add_argument("--nights", type=int, default=1, help="nights per episode (ppo, rllib-ppo)")
    p.add_argument("--n-envs", type=int, default=1, help="parallel envs, one process each (ppo)")
    p.add_argument("--n-candidates", type=int, default=16,
                   help="candidates per decision (ppo, rllib-ppo)")  # fmt: skip
    p.add_argument(
        "--reward-weight",
        action="append",
        default=[],
        metavar="TERM=W",
        help="reward weight override, e.g. alert=4 (repeatable; ppo, rllib-ppo)",
    )
    p.add_argument("--net-arch", help="hidden layers, e.g. 64,64 (ppo: default 64,64; "
                   "rllib-ppo: the shared encoder, default 128,128)")  # fmt: skip
    p.add_argument("--ppo", action="append", default=[], metavar="KEY=JSON",
                   help="MaskablePPO argument, e.g. n_steps=512, or RLlib PPOConfig.training "
                        "argument, e.g. gamma=0.995 (repeatable)")  # fmt: skip
    p.add_argument("--checkpoint-every", type=int, default=10,
                   help="RLlib iterations between checkpoints (rllib-ppo; 0: none)")  # fmt: skip
    p.add_argument("--num-env-runners", type=int, default=0, help="RLlib env runners (rllib-ppo)")
    p.add_argument("--address", help="Ray cluster address (rllib-ppo; default: local Ray)")
    p.add_argument("--generations", type=int, default=30, help="CMA-ES generations (cma-es)")
    p.add_argument("--population", type=int, help="weight vectors per generation (cma-es)")
    p.add_argument("--seeds-per-generation", type=int, default=8,
                   help="training nights each vector runs per generation (cma-es)")  # fmt: skip
    p.add_argument("--sigma0", type=float, help="initial CMA-ES step (cma-es; default 0.3)")
    p.add_argument("--start-spread-days", type=int, default=0,
                   help="each training night starts on a random day within this many days "
                        "of --start (365: the whole year)")  # fmt: skip
    p.add_argument("--alert-guard", action="store_true",
                   help="never postpone an alert's first visit that greedy would take now "
                        "(cma-es; saved with the scorer)")  # fmt: skip
    p.add_argument("--alert-weight", type=float,
                   help="objective per alert followed, in science value "
                        "(cma-es; default 10)")  # fmt: skip
    p.add_argument("--workers", type=int, help="processes running nights (cma-es; default: CPUs)")
    p.add_argument("--lookahead", action="store_true",
                   help="search the look-ahead weights too: better airmass later tonight here "
                        "or at another site under a clear forecast (cma-es)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def register_evaluate(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="a policy over many seeds: means, 95%% intervals "
                              "and the fraction of the oracle's bound")  # fmt: skip
    p.add_argument("--policy", required=True,
                   help="greedy, priority, random, oracle, or the path of a saved policy "
                        "(a folder with manifest.json + policy.pt, or a scorer.json)")  # fmt: skip
    p.add_argument("--scenario", default=None, help="scenario YAML file (default: "
                   f"{Path(DEFAULT_SCENARIO).name})")  # fmt: skip
    p.add_argument("--seeds", default=None, help="A..B (inclusive), A,B,C or A (default 1..5)")
    p.add_argument("--nights", type=int, default=None, help="nights per seed (default 1)")
    p.add_argument("--start", help="first night's date YYYY-MM-DD (default: the scenario's, "
                   "or 2027-04-07 when it says 'tonight', as in training)")  # fmt: skip
    p.add_argument("--no-oracle", action="store_true", help="skip the oracle's upper bound")
    p.add_argument("--oracle-time-limit", type=float, default=None, metavar="S",
                   help="seconds per night for the oracle's plan (default 10; with "
                        "--protocol, for each world's LP bound, default 300)")  # fmt: skip
    p.add_argument("--against", metavar="POLICY",
                   help="also run POLICY on the same seeds and report the paired difference "
                        "(e.g. greedy)")  # fmt: skip
    p.add_argument("--json", metavar="PATH", help="also write per-seed rows and the summary")
    p.add_argument("--protocol", action="store_true",
                   help="the fixed protocol instead of --scenario/--seeds/--start: three "
                        "networks x four seasons x new and full moon, 2028, seeds no policy "
                        "trained on, paired with greedy (agents/protocol.py)")  # fmt: skip
    p.add_argument(
        "--seeds-per-cell",
        type=int,
        default=None,
        metavar="N",
        help="with --protocol: seeds in each cell (default 10)",
    )
    p.add_argument(
        "--networks",
        default=None,
        metavar="A,B",
        help="with --protocol: a subset of global-3site,india-chile,dense-8site",
    )
    p.add_argument("--workers", type=int, default=None, help="with --protocol: processes")
    p.set_defaults(func=cmd_evaluate)


ONLY_FOR = {"n_envs": (("ppo",), 1), "num_env_runners": (("rllib-ppo",), 0),
            "address": (("rllib-ppo",), None), "checkpoint_every": (("rllib-ppo",), 10),
            "lookahead": (("cma-es",), False), "alert_guard": (("cma-es",), False),
            "alert_weight": (("cma-es",), None), "population": (("cma-es",), None),
            "sigma0": (("cma-es",), None), "workers": (("cma-es",), None),
            "net_arch": (("ppo", "rllib-ppo"), None), "ppo": (("ppo", "rllib-ppo"), []),
            "reward_weight": (("ppo", "rllib-ppo"), []),
            "n_candidates": (("ppo", "rllib-ppo"), 16)}  # fmt: skip
"""``skytwin train`` options that only some algorithms use, and their unset value: given
to another algorithm, they are refused rather than silently ignored."""


def _check_train_options(args: argparse.Namespace) -> None:
    for dest, (algos, unset) in ONLY_FOR.items():
        if args.algo not in algos and getattr(args, dest) != unset:
            option = "--" + dest.replace("_", "-")
            raise ConfigError("command line", option, f"applies to --algo {' or '.join(algos)}"
                              f", not {args.algo}")  # fmt: skip


def cmd_train(args: argparse.Namespace) -> None:
    _check_train_options(args)
    name = Path(args.scenario).stem
    out = Path(args.out or f"runs/{args.algo}-{name}-s{args.seed}")
    if args.algo == "rllib-ppo":
        from agents.rllib_policy import export_policy
        from agents.rllib_train import train_rllib
        from agents.sb3_train import fixed_start

        weights = _pairs(args.reward_weight, float, "--reward-weight") or None
        env_kwargs = {"n_candidates": args.n_candidates, "reward_weights": weights,
                      "start_spread_days": args.start_spread_days}  # fmt: skip
        run = train_rllib(args.scenario, args.steps, args.seed, out,
                          num_env_runners=args.num_env_runners, address=args.address,
                          start=fixed_start(args.scenario, args.start), nights=args.nights,
                          env_kwargs=env_kwargs, checkpoint_every=args.checkpoint_every,
                          ppo_kwargs=_pairs(args.ppo, json.loads, "--ppo") or None,
                          model_config=_layers(args.net_arch, "fcnet_hiddens"),
                          progress=not args.quiet, init_from=args.init_from)  # fmt: skip
        policy = export_policy(run.checkpoint, out / "policy", command=_rllib_command(args, out))
        print(f"RLlib checkpoint in {run.checkpoint} (resume with --init-from); policy: "
              f"{policy}/ (manifest.json + policy.pt), the folder --policy loads")  # fmt: skip
        return
    if args.algo == "cma-es":
        _train_cmaes(args, out)
        return
    from agents.sb3_train import DEFAULT_NET_ARCH, train_ppo

    result = train_ppo(
        args.scenario, args.steps, args.seed, out, args.n_envs, start=args.start,
        nights=args.nights, n_candidates=args.n_candidates,
        reward_weights=_pairs(args.reward_weight, float, "--reward-weight") or None,
        net_arch=(tuple(_layers(args.net_arch, "net_arch")["net_arch"]) if args.net_arch
                  else DEFAULT_NET_ARCH),
        ppo_kwargs=_pairs(args.ppo, json.loads, "--ppo") or None, progress=not args.quiet,
        init_from=args.init_from, start_spread_days=args.start_spread_days,
    )  # fmt: skip
    size_kb = (result.policy_dir / "policy.pt").stat().st_size / 1024
    print(f"policy: {result.policy_dir}/ (manifest.json + policy.pt, {size_kb:.0f} kB), "
          f"trained {args.steps} steps in {result.wall_s:.0f} s; SB3's {result.model_path.name}"
          " is kept for --init-from")  # fmt: skip
    print(f"try it: skytwin run {args.scenario} --start {result.manifest['start']} "
          f"--policy {result.policy_dir}")  # fmt: skip


def _layers(text: str | None, key: str) -> dict[str, list[int]] | None:
    """``{key: [sizes]}`` from ``--net-arch`` ("128,128"), None when not given."""
    if text is None:
        return None
    try:
        sizes = [int(n) for n in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise ConfigError("command line", "--net-arch", f"layer sizes like 64,64, got {text!r}")
    return {key: sizes}


def _rllib_command(args: argparse.Namespace, out: Path) -> str:
    """The ``skytwin train`` command that reproduces an RLlib run, from its arguments."""
    from agents.sb3_train import _shown, fixed_start

    cmd = ["skytwin", "train", "--algo", "rllib-ppo", "--scenario", _shown(args.scenario),
           "--steps", str(args.steps), "--seed", str(args.seed), "--out", _shown(out),
           "--start", fixed_start(args.scenario, args.start)]  # fmt: skip
    optional = [("--nights", args.nights, 1), ("--n-candidates", args.n_candidates, 16),
                ("--start-spread-days", args.start_spread_days, 0),
                ("--net-arch", args.net_arch, None),
                ("--checkpoint-every", args.checkpoint_every, 10),
                ("--num-env-runners", args.num_env_runners, 0)]  # fmt: skip
    for option, value, unset in optional:
        if value != unset:
            cmd += [option, str(value)]
    for option, values in (("--reward-weight", args.reward_weight), ("--ppo", args.ppo)):
        for value in values:
            cmd += [option, value]
    if args.init_from:
        cmd += ["--init-from", _shown(args.init_from)]
    return shlex.join(cmd)


def _train_cmaes(args: argparse.Namespace, out: Path) -> None:
    from agents.es_train import train_cmaes

    given = {k: v for k, v in (("sigma0", args.sigma0), ("alert_weight", args.alert_weight))
             if v is not None}  # the function's defaults otherwise  # fmt: skip
    result = train_cmaes(args.scenario, args.generations, args.seed, out,
                         population=args.population,
                         seeds_per_generation=args.seeds_per_generation,
                         alert_guard=args.alert_guard, start_spread_days=args.start_spread_days,
                         start=args.start, nights=args.nights, workers=args.workers,
                         progress=not args.quiet, lookahead=args.lookahead,
                         init_from=args.init_from, **given)  # fmt: skip
    print(f"scorer: {result.scorer_path}, {args.generations} generations in {result.wall_s:.0f} s")
    for metric in ("science_value", "alerts_followed"):
        v = result.validation[metric]
        print(f"validation seeds {result.validation['seeds']}, {metric}: {v['mean']:.2f} vs "
              f"greedy {v['reference_mean']:.2f}, paired gain {v['gain_mean']:+.2f} "
              f"[{v['gain_low']:+.2f}, {v['gain_high']:+.2f}]")  # fmt: skip
    print(f"try it: skytwin evaluate --policy {result.scorer_path} --scenario {args.scenario} "
          f"--against greedy")  # fmt: skip


def cmd_evaluate(args: argparse.Namespace) -> None:
    from agents import evaluate as E
    from twin.reports.table import format_table

    protocol_only = {"--seeds-per-cell": args.seeds_per_cell, "--networks": args.networks,
                     "--workers": args.workers}  # fmt: skip
    single_only = {"--scenario": args.scenario, "--seeds": args.seeds, "--start": args.start,
                   "--nights": args.nights, "--against": args.against}  # fmt: skip
    clash = protocol_only if not args.protocol else single_only
    given = [name for name, value in clash.items() if value is not None]
    if given:
        why = ("--protocol fixes its own networks, dates and seeds; drop it" if args.protocol
               else "only applies with --protocol")  # fmt: skip
        raise ConfigError(given[0], given[0].lstrip("-"), why)
    if args.protocol:
        _protocol(args)
        return
    args.scenario = args.scenario or str(DEFAULT_SCENARIO)
    args.seeds = args.seeds or "1..5"
    args.nights = 1 if args.nights is None else args.nights
    limit_s = E.ORACLE_TIME_LIMIT_S if args.oracle_time_limit is None else args.oracle_time_limit
    seeds = E.parse_seeds(args.seeds)
    ev = E.evaluate(args.policy, args.scenario, seeds, nights=args.nights, start=args.start,
                    oracle=not args.no_oracle, oracle_time_limit_s=limit_s)  # fmt: skip
    print(format_table([{k: "-" if v is None else v for k, v in r.items()} for r in ev.rows]))
    print()
    print(E.format_evaluation(ev))
    record = {"policy": ev.policy, "scenario": ev.scenario, "start": ev.start,
              "nights": ev.nights, "rows": ev.rows, "summary": ev.summary}  # fmt: skip
    if args.against:
        ref = E.evaluate(args.against, args.scenario, seeds, nights=args.nights,
                         start=args.start, oracle=False)  # fmt: skip
        print()
        print(E.format_evaluation(ref))
        print()
        print(E.format_paired(ev, ref))
        record["against"] = {"policy": ref.policy, "rows": ref.rows, "summary": ref.summary,
                             "paired_difference": E.paired_difference(ev, ref)}  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2))
        print(f"written to {args.json}")


def _protocol(args: argparse.Namespace) -> None:
    from agents import protocol as P

    limit_s = P.BOUND_TIME_LIMIT_S if args.oracle_time_limit is None else args.oracle_time_limit
    networks = (tuple(n.strip() for n in args.networks.split(",")) if args.networks
                else P.NETWORKS)  # fmt: skip
    n = P.DEFAULT_SEEDS if args.seeds_per_cell is None else args.seeds_per_cell
    workers = 1 if args.workers is None else args.workers
    record = P.run_protocol(args.policy, networks, n, oracle=not args.no_oracle,
                            oracle_time_limit_s=limit_s, workers=workers)  # fmt: skip
    print(P.format_protocol(record))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2))
        print(f"written to {args.json}")


def _pairs(items: list[str], convert, option: str) -> dict:
    """``["a=1", "b=2"]`` to ``{"a": convert("1"), ...}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(option, option.lstrip("-"), f"{item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = convert(value)
        except ValueError as err:
            raise ConfigError(option, key.strip(), f"{value!r}: {err}") from None
    return out
