"""Airlock with the official Python MCP SDK 1.x: streamable HTTP with a bearer token, stdio, a refused token,
and AutoGen's McpWorkbench over both transports.

usage: client_mcp1.py EXE CONFIG URL TOKEN
"""
import asyncio
import sys

import httpx
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from scenario import DELETE, DROP, SELECT, check, check_delete, check_drop, check_select, check_tools

EXE, CONFIG, URL, TOKEN = sys.argv[1:5]
SHOP = {"connection": "shop"}


def text_of(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def exercise(session: ClientSession, label: str):
    init = await session.initialize()
    check(init.serverInfo.name == "airlock", f"{label}: server {init.serverInfo}")
    check(init.protocolVersion == "2025-11-25", f"{label}: protocol {init.protocolVersion}")
    check_tools([t.name for t in (await session.list_tools()).tools], label)
    r = await session.call_tool("sql_query", {**SHOP, "query": SELECT})
    check_select(r.isError, text_of(r), r.structuredContent, label)
    r = await session.call_tool("sql_query", {**SHOP, "query": DROP})
    check_drop(r.isError, text_of(r), r.structuredContent, label)
    r = await session.call_tool("sql_query", {**SHOP, "query": DELETE})
    check_delete(r.isError, text_of(r), label)
    print(f"{label}: ok")


async def over_http():
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30, read=300)) as hc:
        async with streamable_http_client(URL, http_client=hc) as (read, write, _):
            async with ClientSession(read, write) as session:
                await exercise(session, "mcp1 http")


async def over_stdio():
    # MCP stdio clients pass only a few variables on: the token must be given explicitly.
    params = StdioServerParameters(command=EXE, args=["--config", CONFIG, "mcp", "--stdio"],
                                   env={"AIRLOCK_TOKEN": TOKEN, "AIRLOCK_LOG": "warn"})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await exercise(session, "mcp1 stdio")


async def bad_token_is_refused():
    async with httpx.AsyncClient(headers={"Authorization": "Bearer alk_nope_nope"}) as hc:
        response = await hc.post(URL, json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                 headers={"Accept": "application/json, text/event-stream"})
        check(response.status_code == 401, f"bad token: HTTP {response.status_code}")
        check(response.headers.get("www-authenticate", "").lower().startswith("bearer"), "no WWW-Authenticate")
    print("mcp1 bad token: ok")


async def autogen():
    from autogen_ext.tools.mcp import McpWorkbench, StdioServerParams, StreamableHttpServerParams

    http = StreamableHttpServerParams(url=URL, headers={"Authorization": f"Bearer {TOKEN}"},
                                      timeout=30, sse_read_timeout=300)
    stdio = StdioServerParams(command=EXE, args=["--config", CONFIG, "mcp", "--stdio"],
                              env={"AIRLOCK_TOKEN": TOKEN, "AIRLOCK_LOG": "warn"}, read_timeout_seconds=60)
    for label, params in [("autogen http", http), ("autogen stdio", stdio)]:
        async with McpWorkbench(server_params=params) as wb:
            check_tools([t["name"] for t in await wb.list_tools()], label)
            # AutoGen reads only the text content: everything the model needs must be there.
            r = await wb.call_tool("sql_query", {**SHOP, "query": SELECT})
            check_select(r.is_error, "\n".join(p.content for p in r.result), {"status": "completed"}, label)
            r = await wb.call_tool("sql_query", {**SHOP, "query": DROP})
            check_drop(r.is_error, "\n".join(p.content for p in r.result), {"status": "blocked"}, label)
        print(f"{label}: ok")


asyncio.run(over_http())
asyncio.run(over_stdio())
asyncio.run(bad_token_is_refused())
asyncio.run(autogen())
