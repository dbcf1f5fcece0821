"""Airlock with the official Python MCP SDK 2.x (mode "auto": it probes the 2026 revision with server/discover,
Airlock answers that it speaks 2025-11-25, and the client falls back to initialize): streamable HTTP with a bearer
token, stdio, and a refused token.

usage: client_mcp2.py EXE CONFIG URL TOKEN
"""
import asyncio
import sys

import httpx2
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from scenario import DELETE, DROP, SELECT, check, check_delete, check_drop, check_select, check_tools

EXE, CONFIG, URL, TOKEN = sys.argv[1:5]
SHOP = {"connection": "shop"}


def text_of(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def exercise(client: Client, label: str):
    check(str(client.protocol_version) == "2025-11-25", f"{label}: protocol {client.protocol_version}")
    check_tools([t.name for t in (await client.list_tools()).tools], label)
    r = await client.call_tool("sql_query", {**SHOP, "query": SELECT})
    check_select(r.is_error, text_of(r), r.structured_content, label)
    r = await client.call_tool("sql_query", {**SHOP, "query": DROP})
    check_drop(r.is_error, text_of(r), r.structured_content, label)
    r = await client.call_tool("sql_query", {**SHOP, "query": DELETE})
    check_delete(r.is_error, text_of(r), label)
    print(f"{label}: ok")


async def over_http():
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as hc:
        async with Client(streamable_http_client(URL, http_client=hc), mode="auto") as client:
            await exercise(client, "mcp2 http")


async def over_stdio():
    params = StdioServerParameters(command=EXE, args=["--config", CONFIG, "mcp", "--stdio"],
                                   env={"AIRLOCK_TOKEN": TOKEN, "AIRLOCK_LOG": "warn"})
    async with Client(params, mode="auto") as client:
        await exercise(client, "mcp2 stdio")


async def bad_token_is_refused():
    refused = False
    try:
        async with httpx2.AsyncClient(headers={"Authorization": "Bearer alk_nope_nope"}) as hc:
            async with Client(streamable_http_client(URL, http_client=hc), mode="auto") as client:
                await client.list_tools()
    except BaseException as e:  # the SDK raises inside task groups
        refused = "401" in repr(e) or "Unauthorized" in repr(e) or isinstance(e, BaseExceptionGroup)
    check(refused, "a bad token was not refused")
    print("mcp2 bad token: ok")


asyncio.run(over_http())
asyncio.run(over_stdio())
asyncio.run(bad_token_is_refused())
