"""Serve request-time features from a local lake: replay authorizations, or run the HTTP service.

    python feature_store/serve_features.py replay --lake-root ./lake [--input auths.ndjson]
    python feature_store/serve_features.py http --lake-root ./lake [--host 127.0.0.1] [--port 8080] [--model PATH]

Card numbers are tokenized with the batch jobs' key (LAKEHOUSE_CARD_TOKEN_KEY); `--allow-development-token-key`
uses the public development key instead, as the jobs do on a local lake (never picked without the flag).

`replay` reads bronze-contract NDJSON (the file, or stdin without --input) in order and serves each non-blank
line with write-back, as a scoring service would; it prints one JSON line per non-blank input line: the
features response, or `{"line": N, "error": "<reason>", "detail": "..."}` (N counts every input line from 1).
`http` runs the FastAPI service (feature_store/http_service.py) on uvicorn, logging JSON lines to stderr.

Both read and write the lake's online state, `<lake-root>/feature_store/online_state.db`; the pipeline's
feature-store step keeps it in line with silver.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feature_store.model_artifact import ModelArtifactError
from feature_store.serving_endpoints import ServingSetupError
from spark_jobs import exit_codes
from spark_jobs.card_numbers import TokenKeyError

PROG = "serve_features.py"


@dataclass(frozen=True)
class ReplayOptions:
    lake_root: Path
    input: Path | None  # None: stdin
    fx_rates: Path | None
    allow_development_token_key: bool = False


@dataclass(frozen=True)
class HttpOptions:
    lake_root: Path
    host: str
    port: int
    model: Path | None
    fx_rates: Path | None
    allow_development_token_key: bool = False


def parse_options(argv: list[str] | None = None) -> ReplayOptions | HttpOptions:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    modes = parser.add_subparsers(dest="mode", required=True)
    replay = modes.add_parser("replay", help="serve bronze-contract NDJSON lines in order, print one JSON line each")
    http = modes.add_parser("http", help="run the HTTP service on uvicorn")
    for mode in (replay, http):
        mode.add_argument("--lake-root", type=Path, required=True, help="the local lake (its online state is read)")
        mode.add_argument(
            "--fx-rates", type=Path, default=None, help="currency,usd_rate CSV (default: the batch jobs' own)"
        )
        mode.add_argument(
            "--allow-development-token-key",
            action="store_true",
            help="without LAKEHOUSE_CARD_TOKEN_KEY, tokenize with the public development key (a local development "
            "lake built with the same flag); refused without it",
        )
    replay.add_argument("--input", type=Path, default=None, help="NDJSON file (default: stdin)")
    http.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    http.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    http.add_argument("--model", type=Path, default=None, help="model.zip from scripts/train_baseline.py (/v1/score)")
    args = parser.parse_args(argv)
    if args.mode == "replay":
        if args.input is not None and not args.input.is_file():
            parser.error(f"--input {args.input}: no such file")
        return ReplayOptions(args.lake_root, args.input, args.fx_rates, args.allow_development_token_key)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be 1-65535, got {args.port}")
    return HttpOptions(
        args.lake_root, args.host, args.port, args.model, args.fx_rates, args.allow_development_token_key
    )


def run_replay(options: ReplayOptions) -> None:
    from feature_store.serving_endpoints import configure_json_logs, local_server, replay_ndjson

    configure_json_logs(logging.WARNING)  # stderr: warnings and failures only, as JSON; stdout: the responses
    server = local_server(
        options.lake_root,
        fx_rates_path=options.fx_rates,
        allow_development_token_key=options.allow_development_token_key,
    )
    source = options.input.open("rb") if options.input else sys.stdin.buffer
    try:
        for response in replay_ndjson(server, source):
            print(json.dumps(response, separators=(",", ":"), ensure_ascii=False), flush=True)
    finally:
        if options.input:
            source.close()
        server.close()


def run_http(options: HttpOptions) -> None:
    import uvicorn

    from feature_store import model_artifact
    from feature_store.http_service import create_app
    from feature_store.serving_endpoints import configure_json_logs, local_server

    configure_json_logs()  # first: the server's own start-up warnings are JSON lines too
    model = model_artifact.load(options.model) if options.model else None
    server = local_server(
        options.lake_root,
        fx_rates_path=options.fx_rates,
        allow_development_token_key=options.allow_development_token_key,
    )
    try:
        # log_config=None: uvicorn logs through the root logger, as JSON; our request lines replace its access log
        uvicorn.run(
            create_app(server, model=model), host=options.host, port=options.port, log_config=None, access_log=False
        )
    finally:
        server.close()


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    try:
        if isinstance(options, ReplayOptions):
            run_replay(options)
        else:
            run_http(options)
    except (ServingSetupError, TokenKeyError) as error:  # no lake or online state, or no key: say what to do
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return exit_codes.PRECONDITION_FAILED
    except (ModelArtifactError, ValueError) as error:  # a model file or input that is not what it should be
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return exit_codes.INVALID_INPUT
    except BrokenPipeError:  # `... replay | head`: the reader left; not an error of ours
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
