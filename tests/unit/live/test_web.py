"""The live page's server: no token, no service (403); with it, the plan, the page and server-sent events."""

import asyncio

from aiohttp.test_utils import TestClient, TestServer

from testbed.kinds import kind_of, load_lab, netplan_for
from testbed.lab import Lab
from testbed.live.web import LiveServer, default_flow, plan_view
from testbed.rundir import RunDir

TOKEN = "s3cret-token"


def offline_lab(tmp_path, topology="topologies/two-isp-site.yaml"):
    model = load_lab(topology)
    return Lab(netplan_for(model), RunDir(tmp_path / "lx"), kind_of(model))


def run(tmp_path, scenario):
    async def main():
        server = LiveServer(offline_lab(tmp_path), TOKEN)
        async with TestClient(TestServer(server.app())) as client:
            await scenario(server, client)
    asyncio.run(main())


def test_every_route_refuses_a_missing_or_wrong_token(tmp_path):
    async def scenario(server, client):
        for method, path in [("GET", "/"), ("GET", "/events"), ("GET", "/api/plan"), ("GET", "/api/state"),
                             ("POST", "/api/fault"), ("POST", "/api/restore"), ("POST", "/api/flow")]:
            for query in ("", "?token=wrong", f"?token={TOKEN[:-1]}"):
                resp = await client.request(method, path + query, json={"kind": "isp-down", "words": ["ispa"]})
                assert resp.status == 403, (method, path, query)
        resp = await client.get("/", headers={"X-Mhlab-Token": "nope"})
        assert resp.status == 403
    run(tmp_path, scenario)


def test_with_the_token_the_page_plan_and_events_arrive(tmp_path):
    async def scenario(server, client):
        page = await client.get(f"/?token={TOKEN}")
        assert page.status == 200 and "start tcpseq flow" in await page.text()
        plan = await (await client.get("/api/plan", headers={"X-Mhlab-Token": TOKEN})).json()
        assert "ispa-ra" in plan["links"] and "site-lan" not in plan["links"]
        assert plan["hosts"]["h1"] == {"ispa": ["2001:db8:a001:1::10"], "ispb": ["2001:db8:b001:1::10"]}
        server.broadcast("state", '{"state": 1}')
        resp = await client.get(f"/events?token={TOKEN}")
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
        assert first == b'event: state\ndata: {"state": 1}\n\n'
        server.broadcast("flows", "[]")
        assert await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5) == b"event: flows\ndata: []\n\n"
        resp.close()
        bad = await client.post(f"/api/fault?token={TOKEN}", json={"kind": "link-up", "words": ["ispa-ra"]})
        assert bad.status == 400 and "kind must be one of" in (await bad.json())["error"]
    run(tmp_path, scenario)


def test_the_default_flow(tmp_path):
    assert default_flow(offline_lab(tmp_path)) == ("h1", "srv", "2001:db8:a001:1::10", None)
    assert default_flow(offline_lab(tmp_path, "topologies/two-sites-shim.yaml")) == ("hA", "hB", None, None)
    assert [i["name"] for i in plan_view(offline_lab(tmp_path))["isps"]] == ["core", "ispa", "ispb"]
