"""An on-call assistant that reaches production only through Airlock.

AutoGen's AssistantAgent with Airlock's MCP tools (McpWorkbench), over streamable HTTP with a bearer token or over
stdio (`airlock mcp --stdio` as a child process). With OPENAI_API_KEY set it thinks with an OpenAI-compatible model
(OPENAI_BASE_URL and OPENAI_MODEL optional); without it, or with --scripted, it plays a scripted scenario from
scenarios.py. Everything the agent does is printed: the task, each tool call, each tool result as the model sees
it, and the answer.

    python oncall_assistant.py --scenario blocked-drop                       # HTTP, `airlock demo` on :8080
    python oncall_assistant.py --transport stdio --config airlock-demo/airlock.toml --scenario masked-select
    OPENAI_API_KEY=sk-... python oncall_assistant.py --task "Which city placed the most orders?"
"""
import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import TextMessage, ToolCallExecutionEvent, ToolCallRequestEvent

from scenarios import ScriptedModel, scenarios

# The region between the two markers is the README's "Use with AutoGen" snippet, verbatim:
# tests/tests/autogen_example.rs checks that README.md still contains it, and runs this file.
# [readme-snippet]
from autogen_agentchat.agents import AssistantAgent
from autogen_ext.tools.mcp import McpWorkbench, StdioServerParams, StreamableHttpServerParams

SYSTEM_MESSAGE = """You are an on-call assistant. You reach production databases and hosts only through Airlock's
tools; call list_connections when you do not know a connection's name. Every tool result starts with `status:`.
- completed: answer from the result. Values shown masked (e-mails, card numbers, SSNs, secrets) are masked on
  purpose: never try to unmask, guess or reconstruct them, and do not query around the masking.
- blocked: policy forbids the call. Tell the user the rule and the reason the result names. Do not send the same
  statement or command again, nor a variation that does the same thing.
- pending_approval: a human has to approve the call. Call await_approval with the approval_id from the result, and
  again while it returns pending_approval, until it returns another status. Do not resend the original call.
- denied or expired: nothing was executed. Tell the user the status and the reason; do not retry.
- error: report the message; change the arguments only if the message says they were wrong.
Be brief; give the replay link of any call that changed something."""


def airlock_server(transport: str, token: str, url: str, airlock: str, config: str):
    """How AutoGen reaches Airlock: streamable HTTP with a bearer token, or stdio (AutoGen starts `airlock`)."""
    if transport == "http":
        return StreamableHttpServerParams(
            url=url,  # `airlock serve` or `airlock demo`: http://127.0.0.1:8080/mcp
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            sse_read_timeout=300,  # a governed call may wait for a human's approval
        )
    return StdioServerParams(
        command=airlock,
        args=["--config", config, "mcp", "--stdio"],
        env={"AIRLOCK_TOKEN": token},  # stdio clients pass only HOME, PATH, ... to the child: give the token here
        read_timeout_seconds=120,  # AutoGen's default is 5 s; a held call waits [approval] in_call_wait (20 s)
    )


async def run_oncall(server_params, model_client, task: str) -> None:
    async with McpWorkbench(server_params=server_params) as airlock_tools:
        agent = AssistantAgent(
            "oncall",
            model_client=model_client,
            workbench=airlock_tools,
            system_message=SYSTEM_MESSAGE,
            max_tool_iterations=10,  # e.g. sql_query -> pending_approval -> await_approval -> ... in one run
            reflect_on_tool_use=True,  # finish with an answer written from the tool results
        )
        async for event in agent.run_stream(task=task):
            show(event)  # prints the task, each tool call and result, and the answer
# [/readme-snippet]


def show(event) -> None:
    """Print the conversation as it happens (flushed: the tests read it while the agent waits for a human)."""
    if isinstance(event, ToolCallRequestEvent):
        for c in event.content:
            print(f">>> call {c.name} {c.arguments}")
    elif isinstance(event, ToolCallExecutionEvent):
        for r in event.content:
            print(f"<<< result {r.name} ({'error' if r.is_error else 'ok'})")
            print("\n".join(f"    {line}" for line in r.content.splitlines()))
    elif isinstance(event, TextMessage):
        print(f"=== {event.source}:")
        print(event.content)
    elif isinstance(event, TaskResult):
        print(f"=== done ({event.stop_reason or 'answered'})")
    sys.stdout.flush()


def openai_model():
    """An OpenAI-compatible model from OPENAI_API_KEY, OPENAI_BASE_URL and OPENAI_MODEL."""
    from autogen_core.models import ModelFamily, ModelInfo
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    kwargs = {"model": os.environ.get("OPENAI_MODEL", "gpt-4o")}
    if os.environ.get("OPENAI_BASE_URL"):
        kwargs["base_url"] = os.environ["OPENAI_BASE_URL"]
    try:
        return OpenAIChatCompletionClient(**kwargs)
    except ValueError:  # a model AutoGen does not know (local servers, other vendors): say what it can do
        info = ModelInfo(vision=False, function_calling=True, json_output=False, family=ModelFamily.UNKNOWN,
                         structured_output=False)
        return OpenAIChatCompletionClient(**kwargs, model_info=info)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transport", choices=["http", "stdio"], default=os.environ.get("AIRLOCK_TRANSPORT", "http"))
    p.add_argument("--url", default=os.environ.get("AIRLOCK_URL", "http://127.0.0.1:8080/mcp"),
                   help="MCP endpoint for --transport http")
    p.add_argument("--airlock", default=os.environ.get("AIRLOCK_BIN", "airlock"),
                   help="the airlock binary for --transport stdio")
    p.add_argument("--config", default=os.environ.get("AIRLOCK_CONFIG", "airlock-demo/airlock.toml"),
                   help="airlock.toml for --transport stdio")
    p.add_argument("--token-file", default="airlock-demo/agent.token",
                   help="read the agent token from this file when AIRLOCK_TOKEN is not set")
    p.add_argument("--scenario", help="a scripted scenario from scenarios.py (default masked-select)")
    p.add_argument("--task", help="what to ask the model (with OPENAI_API_KEY); default: the scenario's task")
    p.add_argument("--scripted", action="store_true", help="play the scenario even when OPENAI_API_KEY is set")
    p.add_argument("--sql-connection", default="shop", help="database connection the scenarios use")
    p.add_argument("--ssh-connection", default="web", help="ssh connection the scenarios use")
    args = p.parse_args()

    token = os.environ.get("AIRLOCK_TOKEN") or ""
    if not token and Path(args.token_file).is_file():
        token = Path(args.token_file).read_text().strip()
    if not token:
        p.error("set AIRLOCK_TOKEN (from `airlock token create`) or point --token-file at a token")

    named = scenarios(args.sql_connection, args.ssh_connection)
    scenario = named.get(args.scenario or "masked-select")
    if scenario is None:
        p.error(f"unknown scenario {args.scenario!r}; one of {', '.join(named)}")
    if os.environ.get("OPENAI_API_KEY") and not args.scripted:
        model_client, task = openai_model(), args.task or scenario.task
    else:
        if args.task:
            p.error("--task needs a model: set OPENAI_API_KEY (scripted runs play --scenario)")
        logging.getLogger("autogen_core.events").setLevel(logging.ERROR)  # the replay client's token-count notes
        model_client, task = ScriptedModel(scenario), scenario.task

    server = airlock_server(args.transport, token, args.url, args.airlock, args.config)
    print(f"=== airlock over {args.transport}, {'scripted' if isinstance(model_client, ScriptedModel) else 'real'} model",
          flush=True)
    asyncio.run(run_oncall(server, model_client, task))


if __name__ == "__main__":
    main()
