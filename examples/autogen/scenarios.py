"""Scripted model turns, so the on-call assistant runs without an LLM (and in CI).

A scenario is what the user asks (`task`) and the turns a model would take to answer it:

- `call(tool, **arguments)`: the model calls one Airlock tool;
- `await_decision()`: while the last tool result says `pending_approval`, the model calls `await_approval` with the
  result's approval_id (again and again until a human decides), then moves on;
- `report()`: the model's final answer, written from the last tool result the way the system message asks (the
  rule and reason of a refusal, the reason of a denial, the rows or the output of a completed call).

`ScriptedModel` plays the turns through AutoGen's `ReplayChatCompletionClient`: the AssistantAgent, McpWorkbench
and Airlock are all real, only the model's choices are written down here.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Callable, Sequence

from autogen_core import FunctionCall
from autogen_core.models import (
    CreateResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    ModelFamily,
    ModelInfo,
    RequestUsage,
)
from autogen_ext.models.replay import ReplayChatCompletionClient

# A turn computes the model's response from the conversation so far.
Turn = Callable[[Sequence[LLMMessage]], CreateResult]


@dataclass
class Scenario:
    task: str
    turns: list[Turn | "AwaitDecision"] = field(default_factory=list)


def scenarios(sql_connection: str, ssh_connection: str) -> dict[str, Scenario]:
    """The named scenarios, for a database connection and an ssh connection (names from list_connections)."""
    db = {"connection": sql_connection}
    return {
        # Personal data comes back masked; the answer shows what the model saw.
        "masked-select": Scenario(
            "Show me the first five customers with their e-mail addresses.",
            [
                call("list_connections"),
                call("sql_query", **db, query="SELECT id, name, email FROM customers ORDER BY id LIMIT 5"),
                report(),
            ],
        ),
        # Blocked by policy: the answer names the rule and the reason, and the statement is not sent again.
        "blocked-drop": Scenario(
            "The orders table is obsolete. Drop it.",
            [call("sql_query", **db, query="DROP TABLE orders"), report()],
        ),
        # Held for a human: pending_approval, then await_approval until approved (the executed result), denied or
        # expired (the reason).
        "approval-delete": Scenario(
            "Clean up: delete every row of the orders table.",
            [call("sql_query", **db, query="DELETE FROM orders"), await_decision(), report()],
        ),
        # A read-only diagnostic on a host runs at once.
        "ssh-uptime": Scenario(
            f"How long has {ssh_connection} been up, and what is its load?",
            [call("ssh_run", connection=ssh_connection, command="uptime"), report()],
        ),
    }


# ---- turns -----------------------------------------------------------------------------------------------------

_NO_USAGE = RequestUsage(prompt_tokens=0, completion_tokens=0)


def _function_call(tool: str, arguments: dict) -> CreateResult:
    content = [FunctionCall(id=f"call_{uuid.uuid4().hex[:12]}", name=tool, arguments=json.dumps(arguments))]
    return CreateResult(finish_reason="function_calls", content=content, usage=_NO_USAGE, cached=False)


def _text(text: str) -> CreateResult:
    return CreateResult(finish_reason="stop", content=text, usage=_NO_USAGE, cached=False)


def call(tool: str, **arguments) -> Turn:
    return lambda _messages: _function_call(tool, arguments)


@dataclass
class AwaitDecision:
    """Repeats `await_approval` while the last tool result is `pending_approval`."""

    wait_s: int = 60

    def next(self, messages: Sequence[LLMMessage]) -> CreateResult | None:
        text = last_tool_result(messages)
        if status_of(text) != "pending_approval":
            return None
        match = re.search(r'approval_id "([^"]+)"', text)
        if match is None:
            raise ValueError(f"pending_approval without an approval id: {text}")
        return _function_call("await_approval", {"approval_id": match.group(1), "wait_s": self.wait_s})


def await_decision(wait_s: int = 60) -> AwaitDecision:
    return AwaitDecision(wait_s)


def report() -> Turn:
    return lambda messages: _text(answer_from(last_tool_result(messages)))


def last_tool_result(messages: Sequence[LLMMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, FunctionExecutionResultMessage):
            return "\n".join(result.content for result in message.content)
    return ""


def status_of(text: str) -> str:
    match = re.match(r"status: (\w+)", text)
    return match.group(1) if match else "unknown"


def answer_from(text: str) -> str:
    """What the system message asks a model to say about a tool result (Airlock's text rendering)."""
    first, _, rest = text.partition("\n")
    status = status_of(first)
    head = first.split(" Replay: ")[0]
    reason = head.split(". ", 1)[1] if ". " in head else ""
    reason = re.sub(r'^blocked by policy rule "[^"]*": ', "", reason)
    rule = re.search(r", rule ([\w-]+)", head)
    if status == "blocked":
        return (f"Airlock blocked this (policy rule {rule.group(1) if rule else '?'}): {reason} "
                "I did not retry it; if it really has to happen, a human has to do it.")
    if status == "denied":
        who = re.match(r"denied by (.+?): (.+?); nothing was executed", reason)
        if who:
            return (f"{who.group(1)} denied the request: {who.group(2)}. Nothing was executed, and I will not send it "
                    "again.")
        return f"The request was denied; nothing was executed. {reason}".strip()
    if status == "expired":
        return f"Nobody decided in time, so the request expired; nothing was executed. {reason}".strip()
    if status == "pending_approval":
        return f"The request is still waiting for a human's approval. {reason}".strip()
    if status == "completed":
        summary = head.removeprefix("status: completed").strip(",. ")
        return f"Done{': ' + summary if summary else ''}.\n{rest}".strip()
    return f"The call failed: {head}"


# ---- the scripted model ----------------------------------------------------------------------------------------

class ScriptedModel(ReplayChatCompletionClient):
    """AutoGen's ReplayChatCompletionClient, with turns computed from the conversation: a scripted model cannot know
    an approval_id in advance, so `await_approval` is written from the `pending_approval` result it answers."""

    def __init__(self, scenario: Scenario):
        super().__init__(
            list(scenario.turns),  # resolved to CreateResults one by one in create()
            model_info=ModelInfo(vision=False, function_calling=True, json_output=False,
                                 family=ModelFamily.UNKNOWN, structured_output=False),
        )

    async def create(self, messages, **kwargs) -> CreateResult:
        i = self._current_index
        while i < len(self.chat_completions):
            turn = self.chat_completions[i]
            if isinstance(turn, AwaitDecision):
                response = turn.next(messages)
                if response is None:  # decided: on to the next turn
                    del self.chat_completions[i]
                    continue
                self.chat_completions.insert(i, response)  # and keep the AwaitDecision after it
            elif callable(turn):
                self.chat_completions[i] = turn(messages)
            break
        return await super().create(messages, **kwargs)
