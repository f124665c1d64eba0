"""Run a function's real handler in this process, as Lambda would (the local twin of
`sam local invoke`)."""

from __future__ import annotations

import importlib.util
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

FUNCTIONS = ("orchestrator", "queue_processor", "premium_extractor", "comments_extractor")


class InvokeError(Exception):
    """The function or its handler file cannot be found."""


class LocalContext:
    """The parts of a Lambda context the handlers and Powertools read."""

    def __init__(self, function_name: str, timeout_ms: int = 900_000) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        )
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def functions_dir() -> Path:
    here = Path(__file__).resolve().parents[2] / "functions"
    if here.is_dir():
        return here
    cwd = Path.cwd() / "functions"
    if cwd.is_dir():
        return cwd
    raise InvokeError("cannot find the functions/ folder: run from the project root")


def load_handler_module(function: str) -> ModuleType:
    path = functions_dir() / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"bat_backfill_fn_{function}", path)
    if spec is None or spec.loader is None:
        raise InvokeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def invoke_function(function: str, event: dict[str, Any], timeout_ms: int = 900_000) -> Any:
    """Run a function's real handler once, as Lambda would, in this process."""
    module = load_handler_module(function)
    return module.handler(event, LocalContext(function, timeout_ms))
