"""The editor's side of "fix this failing test" and "localize": the commands
`hone.fixFailingTest`, `hone.applyFix` and `hone.localize`, and the test functions' code
lenses (the contract is in server/README.md, "Commands").

The repair itself is :mod:`hone.agent.repair`. Here: which test and repository the
arguments name; a scratch copy with the editor's unsaved buffers; the agent in a thread of
its own whose test processes run at a lower CPU priority, its model calls through the
scheduler as background work (completions keep priority); `$/progress`; cancellation; the
user's confirmation; and the edit, as a `workspace/applyEdit` against the document versions
the copy was made from.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import difflib
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hone.agent.repair.localize import Localization, LocalizeError, TestPasses, localize
from hone.agent.repair.loop import FixReport, backend_proposer, repair
from hone.agent.repair.runner import RunCancelled, RunnerError, find_interpreter
from hone.agent.repair.targets import is_test_module, project_root, test_at, test_functions
from hone.agent.repair.workspace import Scratch, WorkspaceError, digest
from hone.models.backend import Cancelled, ModelError
from hone.server.documents import content_of, split_lines, to_units
from hone.server.protocol import REQUEST_FAILED, current_request_id
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.uris import from_fs_path, to_fs_path

if TYPE_CHECKING:
    from hone.server.lsp import HoneServer

log = logging.getLogger("hone.server.repair")

FIX_COMMAND = "hone.fixFailingTest"
APPLY_COMMAND = "hone.applyFix"
LOCALIZE_COMMAND = "hone.localize"
COMMANDS = (FIX_COMMAND, APPLY_COMMAND, LOCALIZE_COMMAND)
KEEP_FIXES = 8  # fixes kept for hone.applyFix
NICE = 10  # the CPU priority the test processes run at (above the server's)
LENS_TITLE = "Fix failing test"
POLL_S = 0.1  # how often a model call waiting for the model checks the budget and cancel
T = TypeVar("T")


class CommandFailed(JsonRpcException):
    """A command that cannot run: the message is for the user (LSP's RequestFailed)."""

    CODE = REQUEST_FAILED


@dataclass
class Target:
    root: Path  # the repository: the tests run here
    test: str  # pytest node id relative to root
    path: Path  # the test file


@dataclass
class PendingFix:
    """A fix the user has not accepted yet, with what its edit is computed against."""

    report: FixReport
    root: Path
    versions: dict[str, int | None]  # relative path -> open document's version at copy time


@dataclass
class Job:
    """One running command: its cancel flag, the model's tickets, its progress token."""

    title: str
    cancel: threading.Event = field(default_factory=threading.Event)
    tickets: list[Any] = field(default_factory=list)
    token: Any = None
    percent: int = 0
    request_id: Any = None  # the command's request: $/cancelRequest on it stops the job

    def stop(self) -> None:
        self.cancel.set()
        for ticket in list(self.tickets):
            ticket.cancel()


class RepairCommands:
    """The commands' state on the server: the running job (one at a time), recent fixes."""

    def __init__(self, server: HoneServer) -> None:
        self.server = server
        self.job: Job | None = None
        self.fixes: collections.OrderedDict[str, PendingFix] = collections.OrderedDict()
        self._ids = itertools.count(1)

    # -- arguments -------------------------------------------------------------------
    def _argument(self, args: tuple[Any, ...]) -> dict[str, Any]:
        if len(args) != 1 or not isinstance(args[0], dict):
            raise CommandFailed(
                'hone: expected one argument, {"testId": "path::test"} or {"uri": ..., '
                '"position": {"line": ..., "character": ...}}'
            )
        return args[0]

    def _check_allowed(self) -> None:
        if not self.server.options.run_code:
            log.warning("refused a command that runs the repository's tests: runCode is off")
            raise CommandFailed(
                "hone: running the repository's tests is off for this workspace. Enable it "
                "for a workspace you trust: set the option runCode to true (VS Code: trust the "
                "workspace; Neovim: setup({ run_code = true }))."
            )

    def _folders(self) -> list[Path]:
        out = []
        for folder in self.server.workspace_folders:
            if folder.uri.startswith("file:") and (path := to_fs_path(folder.uri)):
                out.append(Path(path).resolve())
        return sorted(out, key=lambda p: -len(p.parts))

    def _folder_of(self, path: Path) -> Path:
        for folder in self._folders():
            if path.is_relative_to(folder):
                return folder
        raise CommandFailed(f"hone: {path} is not inside a workspace folder")

    def _text(self, path: Path) -> str:
        doc = self.server.documents.get(from_fs_path(str(path)) or "")
        if doc is not None:
            return doc.text
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandFailed(f"hone: cannot read {path}: {exc}") from None

    def target(self, arg: dict[str, Any]) -> Target:
        """The test and repository the argument names (see the module docstring)."""
        test_id = arg.get("testId")
        if isinstance(test_id, str) and test_id.strip():
            file_part, _, rest = test_id.strip().partition("::")
            if not rest:
                raise CommandFailed(f"hone: {test_id!r} is not a test id (path::name)")
            candidates = (
                [Path(file_part)]
                if os.path.isabs(file_part)
                else [f / file_part for f in self._folders()]
            )
            path = next((p.resolve() for p in candidates if p.is_file()), None)
            if path is None:
                raise CommandFailed(f"hone: no file {file_part} in the workspace folders")
            root = project_root(path, self._folder_of(path))
            return Target(root, f"{path.relative_to(root).as_posix()}::{rest}", path)
        uri, position = arg.get("uri"), arg.get("position")
        if not isinstance(uri, str) or not isinstance(position, dict):
            raise CommandFailed('hone: name the test with "testId", or "uri" and "position"')
        fs = to_fs_path(uri) if uri.startswith("file:") else None
        if not fs:
            raise CommandFailed(f"hone: {uri} is not a file")
        path = Path(fs).resolve()
        line = position.get("line")
        if not isinstance(line, int) or line < 0:
            raise CommandFailed(f"hone: bad position {position!r}")
        root = project_root(path, self._folder_of(path))
        rel = path.relative_to(root).as_posix()
        found = test_at(self._text(path), line + 1)
        if found is None:
            raise CommandFailed(f"hone: no test function at line {line + 1} of {rel}")
        return Target(root, found.nodeid(rel), path)

    def overlays(self, root: Path) -> tuple[dict[str, str], dict[str, int | None]]:
        """The open documents under ``root``: their text (for the scratch copy) and their
        versions (for the edit)."""
        texts: dict[str, str] = {}
        versions: dict[str, int | None] = {}
        for doc in self.server.documents:
            if not doc.uri.startswith("file:") or not (fs := to_fs_path(doc.uri)):
                continue
            path = Path(fs).resolve()
            if path.is_relative_to(root):
                rel = path.relative_to(root).as_posix()
                texts[rel], versions[rel] = doc.text, doc.version
        return texts, versions

    # -- running ---------------------------------------------------------------------
    def start(self, title: str) -> Job:
        """The command's job; one at a time (release it with :meth:`finish`)."""
        if self.job is not None:
            raise CommandFailed(f"{self.job.title} is running; cancel it or wait for it to finish")
        self.job = Job(title, request_id=current_request_id())
        return self.job

    def request_cancelled(self, msg_id: Any) -> None:
        """$/cancelRequest: stop the job when it is that request's."""
        if self.job is not None and msg_id is not None and self.job.request_id == msg_id:
            self.job.stop()

    def finish(self, job: Job, message: str) -> None:
        """End the job's progress with ``message``, and let the next command run."""
        if job.token is not None:
            end = types.WorkDoneProgressEnd(message=message)
            with contextlib.suppress(Exception):
                self.server.work_done_progress.end(job.token, end)
            self.server.work_done_progress.tokens.pop(job.token, None)
            job.token = None
        if self.job is job:
            self.job = None

    async def run(
        self,
        job: Job,
        work: Callable[[Job, Callable[[str, int | None], None]], T],
        token: Any,
    ) -> T:
        """``work(job, say)`` in a thread of its own (its test processes at a lower CPU
        priority), with `$/progress` and cancellation."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        job.token = await self._begin(job, token)

        def say(message: str, percent: int | None = None) -> None:
            loop.call_soon_threadsafe(self._report, job, message, percent)

        def thread() -> None:
            _lower_priority()
            try:
                result = work(job, say)
            except BaseException as exc:  # noqa: BLE001 - handed to the event loop
                loop.call_soon_threadsafe(_settle, done, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, done, result, None)

        threading.Thread(target=thread, name="hone-repair", daemon=True).start()
        try:
            return await asyncio.shield(done)
        except asyncio.CancelledError:
            job.stop()  # $/cancelRequest: the thread's test process is killed
            raise

    async def execute(
        self,
        title: str,
        work: Callable[[Job, Callable[[str, int | None], None]], T],
        arg: dict[str, Any],
        answer: dict[str, Any],
        what: str,
        described: Callable[[T, Job], None],
    ) -> T | None:
        """Run ``work`` as the command's job (:meth:`run`); ``described(result, job)`` puts
        its status and message into ``answer``. None, with ``answer`` filled, when the test
        passes or ``what`` (``the repair``, ``localizing``) was cancelled; CommandFailed when
        the test cannot be run. The job's progress ends with ``answer``'s message."""
        test = answer["test"]
        job = self.start(title)
        try:
            result = await self.run(job, work, arg.get("_workDoneToken"))
            described(result, job)
            return result
        except TestPasses as exc:
            answer.update(status="passes", message=f"hone: {test} passes already ({exc})")
        except (RunCancelled, Cancelled):
            answer.update(status="cancelled", message=f"hone: {what} was cancelled")
        except (LocalizeError, RunnerError, WorkspaceError) as exc:
            answer["message"] = _cannot_run(test, exc)
            raise CommandFailed(answer["message"]) from None
        except asyncio.CancelledError:
            answer["message"] = f"hone: {what} was cancelled"
            raise
        finally:
            self.finish(job, answer.get("message", ""))
        return None

    async def _begin(self, job: Job, token: Any) -> Any:
        progress = self.server.work_done_progress
        if token is None:
            window = self.server.client_capabilities.window
            if window is None or not window.work_done_progress:
                return None
            token = f"hone-repair-{next(self._ids)}"
            try:
                await asyncio.wait_for(progress.create_async(token), 10)
            except Exception:  # noqa: BLE001 - the client refused: no progress then
                log.debug("no progress token for %s", job.title, exc_info=True)
                return None
        progress.begin(
            token, types.WorkDoneProgressBegin(title=job.title, cancellable=True, percentage=0)
        )
        cancelled = progress.tokens.get(token)
        if cancelled is not None:  # window/workDoneProgress/cancel cancels this future
            cancelled.add_done_callback(lambda f: f.cancelled() and job.stop())
        return token

    def _report(self, job: Job, message: str, percent: int | None) -> None:
        if job.token is None:
            return
        if percent is not None:
            job.percent = max(job.percent, min(100, percent))
        self.server.work_done_progress.report(
            job.token, types.WorkDoneProgressReport(message=message, percentage=job.percent)
        )

    def _proposer(self, job: Job) -> Any:
        """The model's edits, when the option asks for them and the model loaded."""
        server = self.server
        if not server.options.repair_model:
            return None

        def submit(call: Callable[[Any], T], stop: Callable[[], bool]) -> T:
            def over() -> bool:
                return job.cancel.is_set() or stop()

            while server.loading is not None and not server.loading.done():
                if over():
                    raise Cancelled("stopped while the model was loading")
                time.sleep(POLL_S)
            if server.load_error is not None:
                raise ModelError(f"the model is not available ({server.load_error})")
            future, ticket = server.submit_background(call)
            job.tickets.append(ticket)
            try:
                while True:
                    try:
                        return future.result(POLL_S)
                    except concurrent.futures.TimeoutError:
                        if over():
                            ticket.cancel()  # the generation stops within a decode step
            finally:
                job.tickets.remove(ticket)

        return backend_proposer(server.backend, submit=submit)

    # -- the commands ----------------------------------------------------------------
    async def fix(self, args: tuple[Any, ...]) -> dict[str, Any]:
        arg = self._argument(args)
        self._check_allowed()
        target = self.target(arg)
        confirm = arg.get("confirm", "server")
        if confirm not in ("server", "client"):
            raise CommandFailed('hone: "confirm" is "server" or "client"')
        budget = arg.get("budgetSeconds", self.server.options.repair_budget_seconds)
        if isinstance(budget, bool) or not isinstance(budget, int | float) or budget <= 0:
            raise CommandFailed(f"hone: bad budgetSeconds {budget!r}")
        texts, versions = self.overlays(target.root)
        python = self.server.options.python or None

        def work(job: Job, say: Callable[[str, int | None], None]) -> FixReport:
            return repair(
                target.root,
                target.test,
                python=python,
                budget_s=float(budget),
                propose=self._proposer(job),
                overlays=texts,
                cancel=job.cancel.is_set,
                progress=say,
            )

        title = f"hone: fix {target.test.rsplit('::', 1)[-1]}"
        answer: dict[str, Any] = {"test": target.test, "fixed": False, "explanation": ""}
        answer.update(diff="", source="", fixId=None, applied=False, candidates=[])
        answer.update(localization=[])

        def described(report: FixReport, job: Job) -> None:
            answer.update(report.as_json())
            answer["status"] = "fixed" if report.fixed else "not-fixed"
            answer["message"] = _summary(report)
            if job.cancel.is_set() and not report.fixed:
                answer.update(status="cancelled", message="hone: the repair was cancelled")

        report = await self.execute(title, work, arg, answer, "the repair", described)
        if report is None or not report.fixed:
            return answer
        fix_id = f"fix-{next(self._ids)}"
        self.fixes[fix_id] = PendingFix(report, target.root, versions)
        while len(self.fixes) > KEEP_FIXES:
            self.fixes.popitem(last=False)
        answer["fixId"] = fix_id
        if confirm == "client":
            answer["changes"] = [
                {"uri": from_fs_path(str(target.root / p)), "path": p, "text": t}
                for p, t in sorted(report.files.items())
            ]
            return answer
        choice = await self.server.window_show_message_request_async(
            types.ShowMessageRequestParams(
                type=types.MessageType.Info,
                message=f"{answer['message']}\n\n{report.diff}",
                actions=[types.MessageActionItem("Apply"), types.MessageActionItem("Cancel")],
            )
        )
        if choice is not None and choice.title == "Apply":
            applied = await self.apply(({"fixId": fix_id},))
            answer.update(applied=applied["applied"], message=applied["message"])
        return answer

    async def apply(self, args: tuple[Any, ...]) -> dict[str, Any]:
        arg = self._argument(args)
        fix_id = arg.get("fixId")
        pending = self.fixes.pop(fix_id, None) if isinstance(fix_id, str) else None
        if pending is None:
            raise CommandFailed(f"hone: no fix {fix_id!r} to apply (a fix applies once)")
        report, root = pending.report, pending.root
        caps = self.server.client_capabilities.workspace
        if caps is None or not caps.apply_edit:
            self.fixes[fix_id] = pending  # the user may still copy the diff
            return _not_applied("the editor does not take edits from the server (applyEdit)")
        edits: list[types.TextDocumentEdit] = []
        encoding = self.server.documents.encoding
        for rel, new in sorted(report.files.items()):
            old = report.originals.get(rel, "")
            uri = from_fs_path(str(root / rel))
            doc = self.server.documents.get(uri)
            version: int | None
            if doc is not None:
                copied = pending.versions.get(rel)
                if (copied is not None and doc.version != copied) or doc.text != old:
                    return _not_applied(f"{rel} was edited since the fix was made")
                version = doc.version
            else:
                if digest(root, [rel])[rel] != report.base.get(rel):
                    return _not_applied(f"{rel} changed on disk since the fix was made")
                version = None
            edits.append(
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(
                        uri=uri, version=version
                    ),
                    edits=line_edits(old, new, encoding),
                )
            )
        result = await self.server.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(
                edit=types.WorkspaceEdit(document_changes=edits),
                label=f"hone: fix {report.test}",
            )
        )
        if not result.applied:
            reason = result.failure_reason or "the editor refused the edit"
            return _not_applied(reason)
        files = ", ".join(sorted(report.files))
        return {"applied": True, "message": f"hone: applied the fix to {files}"}

    async def localize(self, args: tuple[Any, ...]) -> dict[str, Any]:
        arg = self._argument(args)
        self._check_allowed()
        target = self.target(arg)
        texts, _versions = self.overlays(target.root)
        python = self.server.options.python or None

        def work(job: Job, say: Callable[[str, int | None], None]) -> Localization:
            say("copying the workspace", 0)
            interpreter = find_interpreter(target.root, python)
            with Scratch(target.root, texts) as scratch:
                return localize(
                    scratch.root,
                    target.test,
                    python=interpreter,
                    timeout_s=float(self.server.options.repair_budget_seconds),
                    cancel=job.cancel.is_set,
                    progress=lambda m: say("localizing" if m.startswith("ranking") else m, None),
                    env=scratch.env(),
                )

        answer: dict[str, Any] = {"test": target.test, "outcome": "", "functions": []}

        def described(found: Localization, _job: Job) -> None:
            best = found.functions[0] if found.functions else None
            answer.update(status="localized", outcome=found.outcome)
            answer["message"] = (
                f"hone: {target.test} {found.outcome}; most suspect: {best.name} "
                f"({best.path}:{best.start_line})"
                if best
                else f"hone: {target.test} {found.outcome}; no function of the repository ran"
            )

        title = f"hone: localize {target.test.rsplit('::', 1)[-1]}"
        found = await self.execute(title, work, arg, answer, "localizing", described)
        if found is None:
            return answer
        functions = []
        for suspect in found.functions:
            item = suspect.as_json()
            item["uri"] = from_fs_path(str(target.root / suspect.path))
            functions.append(item)
        answer["functions"] = functions
        return answer

    # -- code lens -------------------------------------------------------------------
    def lenses(self, uri: str) -> list[types.CodeLens]:
        """ "Fix failing test" on each test function of a Python test file (while runCode)."""
        if not self.server.options.run_code or not uri.startswith("file:"):
            return []
        fs = to_fs_path(uri)
        if not fs or not fs.endswith(".py"):
            return []
        path = Path(fs).resolve()
        try:
            root = project_root(path, self._folder_of(path))
        except CommandFailed:
            return []
        rel = path.relative_to(root).as_posix()
        if not is_test_module(rel):
            return []
        try:
            text = self._text(path)
        except CommandFailed:
            return []
        out = []
        for test in test_functions(text):
            line = test.def_line - 1
            out.append(
                types.CodeLens(
                    range=types.Range(types.Position(line, 0), types.Position(line, 0)),
                    command=types.Command(
                        title=LENS_TITLE,
                        command=FIX_COMMAND,
                        arguments=[{"testId": test.nodeid(rel)}],
                    ),
                )
            )
        return out


def line_edits(old: str, new: str, encoding: str) -> list[types.TextEdit]:
    """Whole-line edits that turn ``old`` into ``new`` (LSP line ends; the end of the last
    line in ``encoding`` code units)."""
    a, b = split_lines(old), split_lines(new)
    last = len(a) - 1

    def position(i: int) -> types.Position:
        if i <= last:
            return types.Position(i, 0)
        return types.Position(last, to_units(content_of(a[last]), len(a[last]), encoding))

    out = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            out.append(types.TextEdit(types.Range(position(i1), position(i2)), "".join(b[j1:j2])))
    return out


def _not_applied(reason: str) -> dict[str, Any]:
    return {"applied": False, "message": f"hone: not applied: {reason}; run the fix again"}


def _cannot_run(test: str, exc: Exception) -> str:
    tail = "\n".join((getattr(exc, "output", "") or "").strip().splitlines()[-15:])
    message = f"hone: cannot run {test}: {exc}"
    return f"{message}\n{tail}" if tail else message


def _summary(report: FixReport) -> str:
    """One sentence for the user."""
    if report.fixed:
        best = report.fixes[0]
        return (
            f"hone: found a fix for {report.test} ({best.description}); its tests pass "
            f"({', '.join(best.validated_with)})"
        )
    tried = collections.Counter(a.outcome for a in report.candidates)
    what = ", ".join(f"{n} {outcome}" for outcome, n in tried.most_common()) or "none"
    suspects = ", ".join(
        s.name for s in (report.localization.functions[:3] if report.localization else [])
    )
    return (
        f"hone: no fix found for {report.test} in {report.timings.get('total_s', 0):.0f} s: "
        f"tried {len(report.candidates)} candidates ({what}) in {suspects or 'no function'}"
    )


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


def _lower_priority() -> None:
    """This thread, and the test processes it starts, at a lower CPU priority (Linux: the
    nice value is per thread and children inherit it); elsewhere unchanged."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)


__all__ = ["COMMANDS", "CommandFailed", "RepairCommands", "line_edits"]
