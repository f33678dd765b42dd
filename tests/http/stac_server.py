#!/usr/bin/env python3
"""A small STAC API (and plain HTTP data) server for sluice's tests and benchmarks.

Standard library only. It listens on 127.0.0.1 only; with `--port 0` (the default) the
system picks a free port, and the first line printed on standard output is that port.

    python3 tests/http/stac_server.py --items 10000 --page-size 100 --latency-ms 50 \
        --log /tmp/requests.jsonl
    python3 tests/http/stac_server.py --write-static DIR --items 30   # a static catalogue

Routes:

- `/` landing page; `/conformance`; `/collections`; `/collections/{id}`;
- `/search` (GET and POST): `collections`, `bbox`, `datetime` (an instant or an interval
  `a/b`, `..` open), `limit`, `ids`; pages follow `next` links carrying a `token` (the
  offset); a POST's next link carries the whole body (or only the token, with `merge`,
  under `--post-merge`);
- `/collections/{id}/items` (GET): the same, for one collection;
- `/catalog/catalog.json` → `/catalog/{collection}/collection.json` → item files
  `/catalog/{collection}/items/{id}.json` (a static catalogue, relative links);
- `/pages/{n}.{json,jsonl,geojson,csv}`: page n of generated records in that format;
- `/huge` (claims 10 GB and streams zeros until the client stops), `/huge-chunked` (no
  length, endless), `/slow` (headers, a few bytes, then silence), `/redirect-file` (302 to
  `file:///etc/passwd`), `/redirect-ok` (302 to `/pages/0.json`), `/redirect-loop`,
  `/status/{code}`, `/echo` (the request's headers, for header tests).

Every request is logged (one JSON object per line, to `--log`): the method, path, query,
body, the `token` asked for, the status answered, how many requests were in flight when it
arrived, and whether an Authorization header came (`auth`: its value, so a test can check
the token was sent).

Faults (`--fault`, repeatable):

- `429:K[:S]` the first K search requests get 429 with `Retry-After: S` (default 1);
- `429date:K` the same with an HTTP-date Retry-After (one second ahead);
- `503:K` the first K search requests get 503 without Retry-After;
- `429-above:K[:S]` any search request arriving while more than K are in flight gets 429;
- `fail-token:T` the page at token T always answers 500;
- `malformed-token:T` the page at token T is truncated JSON;
- `nogeom:I` item I has a null geometry;
- `loop-token:T` the page at token T's next link is the same request again.
"""
import argparse
import datetime as dt
import email.utils
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
YEAR_SECONDS = 366 * 24 * 3600


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text):
    text = text.strip()
    if text in ("", ".."):
        return None
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    t = dt.datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t


class Data:
    """The generated items: deterministic, in datetime order."""

    def __init__(self, n, collections, nogeom):
        self.n = n
        self.collections = collections
        self.nogeom = nogeom
        self.step = YEAR_SECONDS / max(n, 1)
        self.cache = {}
        self.searches = {}

    def time_of(self, i):
        return START + dt.timedelta(seconds=int(i * self.step))

    def item(self, i, base):
        if i in self.cache:
            return self.cache[i]
        coll = self.collections[i % len(self.collections)]
        lon = round(-170.0 + (i * 7.3) % 340.0, 4)
        lat = round(-60.0 + (i * 3.1) % 120.0, 4)
        d = 0.5
        bbox = [lon, lat, round(lon + d, 4), round(lat + d, 4)]
        geometry = {
            "type": "Polygon",
            "coordinates": [[[bbox[0], bbox[1]], [bbox[2], bbox[1]], [bbox[2], bbox[3]],
                             [bbox[0], bbox[3]], [bbox[0], bbox[1]]]],
        }
        item_id = f"{coll}-{i:06d}"
        t = self.time_of(i)
        item = {
            "type": "Feature",
            "stac_version": "1.0.0",
            "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"],
            "id": item_id,
            "collection": coll,
            "bbox": bbox,
            "geometry": None if i in self.nogeom else geometry,
            "properties": {
                "datetime": iso(t),
                "created": iso(START),
                "eo:cloud_cover": round((i * 37) % 1000 / 10.0, 1),
                "platform": "sentinel-2a" if i % 2 == 0 else "sentinel-2b",
                "gsd": 10,
            },
            "assets": {
                "visual": {"href": f"{base}/data/{item_id}.tif", "type": "image/tiff",
                           "roles": ["visual"]},
                "thumbnail": {"href": f"{base}/data/{item_id}.png", "type": "image/png",
                              "roles": ["thumbnail"]},
            },
            "links": [
                {"rel": "self", "href": f"{base}/collections/{coll}/items/{item_id}"},
                {"rel": "collection", "href": f"{base}/collections/{coll}"},
            ],
        }
        if i in self.nogeom:
            del item["bbox"]
        self.cache[i] = item
        return item

    def matching(self, collections, bbox, interval, ids):
        """Indices of the items a search selects, in order (remembered per search)."""
        key = (tuple(collections), tuple(bbox) if bbox else None, interval, tuple(ids))
        found = self.searches.get(key)
        if found is None:
            found = self._matching(collections, bbox, interval, ids)
            if len(self.searches) > 256:
                self.searches.clear()
            self.searches[key] = found
        return found

    def _matching(self, collections, bbox, interval, ids):
        lo, hi = 0, self.n
        if interval is not None:
            start, end = interval
            if start is not None:
                lo = max(lo, self._first_at_or_after(start))
            if end is not None:
                hi = min(hi, self._first_after(end))
        out = []
        for i in range(lo, hi):
            coll = self.collections[i % len(self.collections)]
            if collections and coll not in collections:
                continue
            if ids and f"{coll}-{i:06d}" not in ids:
                continue
            if bbox is not None:
                lon = -170.0 + (i * 7.3) % 340.0
                lat = -60.0 + (i * 3.1) % 120.0
                if lon > bbox[2] or lon + 0.5 < bbox[0] or lat > bbox[3] or lat + 0.5 < bbox[1]:
                    continue
            out.append(i)
        return out

    def _first_at_or_after(self, t):
        lo, hi = 0, self.n
        while lo < hi:
            mid = (lo + hi) // 2
            if self.time_of(mid) < t:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _first_after(self, t):
        lo, hi = 0, self.n
        while lo < hi:
            mid = (lo + hi) // 2
            if self.time_of(mid) <= t:
                lo = mid + 1
            else:
                hi = mid
        return lo


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.in_flight = 0
        self.search_requests = 0
        self.log = open(args.log, "a", encoding="utf-8") if args.log else None
        self.faults = {}
        for f in args.fault:
            name, _, rest = f.partition(":")
            self.faults.setdefault(name, []).append(rest)
        nogeom = {int(x) for x in self.faults.get("nogeom", [])}
        colls = [c for c in args.collections.split(",") if c]
        self.data = Data(args.items, colls, nogeom)

    def fault_tokens(self, name):
        return {int(x) for x in self.faults.get(name, [])}

    def record(self, entry):
        if self.log is None:
            return
        line = json.dumps(entry, separators=(",", ":"))
        with self.lock:
            self.log.write(line + "\n")
            self.log.flush()


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet
            pass

        # ---- plumbing -------------------------------------------------------------
        def base(self):
            host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
            return f"http://{host}"

        def send_json(self, status, obj, extra=None):
            body = json.dumps(obj, separators=(",", ":")).encode()
            self.send_bytes(status, body, "application/geo+json" if obj.get("type") == "FeatureCollection" else "application/json", extra)

        def send_bytes(self, status, body, ctype, extra=None):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.status = status
            # No longer in flight once the answer is decided: a client that sends its next
            # request as soon as this one's body arrives is never counted twice.
            self.leave()
            self.wfile.write(body)

        def leave(self):
            if not self.left:
                self.left = True
                with state.lock:
                    state.in_flight -= 1

        def read_body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def handle_any(self, method):
            url = urllib.parse.urlsplit(self.path)
            body = self.read_body() if method == "POST" else b""
            with state.lock:
                state.in_flight += 1
                in_flight = state.in_flight
            self.status = 0
            self.token = None
            self.left = False
            t0 = time.time()
            try:
                if state.args.latency_ms > 0 and not url.path.startswith("/_"):
                    time.sleep(state.args.latency_ms / 1000.0)
                self.route(method, url, body, in_flight)
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                self.leave()
                state.record({
                    "t": round(t0, 4),
                    "end": round(time.time(), 4),
                    "method": method,
                    "path": url.path,
                    "query": url.query,
                    "body": body.decode("utf-8", "replace") if body else None,
                    "token": self.token,
                    "status": self.status,
                    "in_flight": in_flight,
                    "auth": self.headers.get("Authorization"),
                })

        def do_GET(self):
            self.handle_any("GET")

        def do_POST(self):
            self.handle_any("POST")

        # ---- routes ---------------------------------------------------------------
        def route(self, method, url, body, in_flight):
            path = url.path.rstrip("/") or "/"
            q = urllib.parse.parse_qs(url.query)
            base = self.base()
            if path == "/":
                return self.send_json(200, {
                    "type": "Catalog", "id": "test", "stac_version": "1.0.0",
                    "description": "sluice test STAC API",
                    "conformsTo": ["https://api.stacspec.org/v1.0.0/core",
                                   "https://api.stacspec.org/v1.0.0/item-search",
                                   "https://api.stacspec.org/v1.0.0/ogcapi-features"],
                    "links": [
                        {"rel": "self", "href": f"{base}/"},
                        {"rel": "root", "href": f"{base}/"},
                        {"rel": "search", "href": f"{base}/search", "method": "GET",
                         "type": "application/geo+json"},
                        {"rel": "search", "href": f"{base}/search", "method": "POST",
                         "type": "application/geo+json"},
                        {"rel": "conformance", "href": f"{base}/conformance"},
                        {"rel": "data", "href": f"{base}/collections"},
                    ],
                })
            if path == "/conformance":
                return self.send_json(200, {"conformsTo": [
                    "https://api.stacspec.org/v1.0.0/core",
                    "https://api.stacspec.org/v1.0.0/item-search"]})
            if path == "/collections":
                return self.send_json(200, {"collections": [self.collection(c, base) for c in state.data.collections], "links": []})
            parts = path.strip("/").split("/")
            if parts[0] == "collections" and len(parts) == 2:
                if parts[1] not in state.data.collections:
                    return self.send_json(404, {"code": "NotFound"})
                return self.send_json(200, self.collection(parts[1], base))
            if parts[0] == "collections" and len(parts) == 3 and parts[2] == "items":
                params = self.get_params(q)
                params["collections"] = [parts[1]]
                return self.search("GET", params, base, f"{base}{path}", in_flight)
            if path == "/search":
                if method == "POST":
                    try:
                        params = json.loads(body or b"{}")
                    except ValueError:
                        return self.send_json(400, {"code": "BadRequest", "description": "invalid JSON body"})
                else:
                    params = self.get_params(q)
                return self.search(method, params, base, f"{base}/search", in_flight)
            if parts[0] == "catalog":
                return self.static(parts[1:], base)
            if parts[0] == "pages" and len(parts) == 2:
                return self.page_file(parts[1])
            if path == "/huge":
                return self.huge(True)
            if path == "/huge-chunked":
                return self.huge(False)
            if path == "/slow":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b'[{"a": 1}')
                self.wfile.flush()
                self.status = 200
                time.sleep(60)
                return None
            if path == "/redirect-file":
                return self.send_bytes(302, b"", "text/plain", {"Location": "file:///etc/passwd"})
            if path == "/redirect-ok":
                return self.send_bytes(302, b"", "text/plain", {"Location": "/pages/0.json"})
            if path == "/redirect-loop":
                return self.send_bytes(302, b"", "text/plain", {"Location": "/redirect-loop"})
            if parts[0] == "status" and len(parts) == 2:
                code = int(parts[1])
                return self.send_json(code, {"code": code})
            if path == "/echo":
                return self.send_json(200, {"headers": dict(self.headers.items())})
            return self.send_json(404, {"code": "NotFound", "path": path})

        def collection(self, c, base):
            return {
                "type": "Collection", "id": c, "stac_version": "1.0.0",
                "description": f"collection {c}", "license": "CC-BY-4.0",
                "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                           "temporal": {"interval": [[iso(START), iso(state.data.time_of(max(state.data.n - 1, 0)))]]}},
                "links": [{"rel": "items", "href": f"{base}/collections/{c}/items"}],
            }

        @staticmethod
        def get_params(q):
            params = {}
            if "collections" in q:
                params["collections"] = q["collections"][0].split(",")
            if "ids" in q:
                params["ids"] = q["ids"][0].split(",")
            if "bbox" in q:
                params["bbox"] = [float(x) for x in q["bbox"][0].split(",")]
            for key in ("datetime", "limit", "token"):
                if key in q:
                    params[key] = q[key][0]
            return params

        def search(self, method, params, base, endpoint, in_flight):
            with state.lock:
                state.search_requests += 1
                n = state.search_requests
            faults = state.faults
            for spec in faults.get("429", []):
                k, _, s = spec.partition(":")
                if n <= int(k):
                    return self.send_json(429, {"code": "TooManyRequests"}, {"Retry-After": s or "1"})
            for spec in faults.get("429date", []):
                if n <= int(spec):
                    when = email.utils.formatdate(time.time() + 1, usegmt=True)
                    return self.send_json(429, {"code": "TooManyRequests"}, {"Retry-After": when})
            for spec in faults.get("503", []):
                if n <= int(spec):
                    return self.send_json(503, {"code": "Unavailable"})
            for spec in faults.get("429-above", []):
                k, _, s = spec.partition(":")
                if in_flight > int(k):
                    return self.send_json(429, {"code": "TooManyRequests"}, {"Retry-After": s or "0"})
            try:
                token = int(params.get("token") or 0)
                limit = int(params.get("limit") or state.args.page_size)
                limit = max(1, min(limit, 10000))
                interval = None
                if params.get("datetime"):
                    text = params["datetime"]
                    if "/" in text:
                        a, b = text.split("/", 1)
                        interval = (parse_time(a), parse_time(b))
                    else:
                        t = parse_time(text)
                        interval = (t, t)
                bbox = params.get("bbox")
                if bbox is not None and len(bbox) != 4:
                    raise ValueError("bbox needs 4 numbers")
                collections = params.get("collections") or []
                if isinstance(collections, str):
                    collections = collections.split(",")
                ids = params.get("ids") or []
            except (ValueError, TypeError) as e:
                return self.send_json(400, {"code": "BadRequest", "description": str(e)})
            self.token = token
            if token in state.fault_tokens("fail-token"):
                return self.send_json(500, {"code": "ServerError"})
            if token in state.fault_tokens("malformed-token"):
                return self.send_bytes(200, b'{"type":"FeatureCollection","features":[{"type":"Feat', "application/geo+json")
            matched = state.data.matching(collections, bbox, interval, ids)
            chunk = matched[token:token + limit]
            features = [state.data.item(i, base) for i in chunk]
            links = [{"rel": "root", "href": f"{base}/"}]
            next_token = token + limit
            if token in state.fault_tokens("loop-token"):
                next_token = token
            if next_token < len(matched):
                if method == "GET":
                    qp = {}
                    for key, value in params.items():
                        if key == "token":
                            continue
                        if isinstance(value, list):
                            value = ",".join(str(v) for v in value)
                        qp[key] = value
                    qp["token"] = str(next_token)
                    links.append({"rel": "next", "type": "application/geo+json", "method": "GET",
                                  "href": f"{endpoint}?{urllib.parse.urlencode(qp)}"})
                elif state.args.post_merge:
                    links.append({"rel": "next", "method": "POST", "href": endpoint,
                                  "body": {"token": next_token}, "merge": True})
                else:
                    nb = dict(params)
                    nb["token"] = next_token
                    links.append({"rel": "next", "method": "POST", "href": endpoint, "body": nb})
            return self.send_json(200, {
                "type": "FeatureCollection",
                "features": features,
                "links": links,
                "numberMatched": len(matched),
                "numberReturned": len(features),
            })

        def static(self, parts, base):
            data = state.data
            if parts == ["catalog.json"]:
                return self.send_json(200, {
                    "type": "Catalog", "id": "static", "stac_version": "1.0.0",
                    "description": "a static catalogue",
                    "links": [{"rel": "root", "href": "./catalog.json"}]
                    + [{"rel": "child", "href": f"./{c}/collection.json"} for c in data.collections],
                })
            if len(parts) == 2 and parts[1] == "collection.json" and parts[0] in data.collections:
                c = parts[0]
                items = [i for i in range(data.n) if data.collections[i % len(data.collections)] == c]
                return self.send_json(200, {
                    "type": "Collection", "id": c, "stac_version": "1.0.0",
                    "description": f"collection {c}", "license": "CC-BY-4.0",
                    "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                               "temporal": {"interval": [[iso(START), None]]}},
                    "links": [{"rel": "parent", "href": "../catalog.json"}]
                    + [{"rel": "item", "href": f"./items/{c}-{i:06d}.json"} for i in items],
                })
            if len(parts) == 3 and parts[1] == "items" and parts[2].endswith(".json"):
                item_id = parts[2][:-5]
                try:
                    i = int(item_id.rsplit("-", 1)[1])
                except (IndexError, ValueError):
                    return self.send_json(404, {"code": "NotFound"})
                if i >= data.n:
                    return self.send_json(404, {"code": "NotFound"})
                return self.send_json(200, data.item(i, base))
            return self.send_json(404, {"code": "NotFound"})

        def page_file(self, name):
            stem, _, ext = name.partition(".")
            try:
                n = int(stem)
            except ValueError:
                return self.send_json(404, {"code": "NotFound"})
            size = state.args.page_size
            rows = [{"id": n * size + k, "page": n, "name": f"r{n * size + k}",
                     "x": round((n * size + k) * 0.5, 3), "y": round(k * 0.25, 3)}
                    for k in range(size)]
            if ext == "json":
                body = json.dumps(rows).encode()
                return self.send_bytes(200, body, "application/json")
            if ext == "jsonl":
                body = "".join(json.dumps(r) + "\n" for r in rows).encode()
                return self.send_bytes(200, body, "application/x-ndjson")
            if ext == "geojson":
                fc = {"type": "FeatureCollection", "features": [
                    {"type": "Feature", "properties": r,
                     "geometry": {"type": "Point", "coordinates": [r["x"], r["y"]]}} for r in rows]}
                return self.send_bytes(200, json.dumps(fc).encode(), "application/geo+json")
            if ext == "csv":
                lines = ["id,page,name,x,y"] + [f'{r["id"]},{r["page"]},{r["name"]},{r["x"]},{r["y"]}' for r in rows]
                return self.send_bytes(200, ("\n".join(lines) + "\n").encode(), "text/csv")
            return self.send_json(404, {"code": "NotFound"})

        def huge(self, with_length):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if with_length:
                self.send_header("Content-Length", str(10 * 1024 ** 3))
            else:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.status = 200
            block = b"[" + b"0," * 32767 + b"0"
            try:
                sent = 0
                while sent < 10 * 1024 ** 3:
                    if with_length:
                        self.wfile.write(block)
                    else:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                    sent += len(block)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

    return Handler


def write_static(state, folder):
    """Writes the static catalogue (relative links) under `folder`."""
    import os
    data = state.data
    os.makedirs(folder, exist_ok=True)
    base = "https://example.invalid"
    with open(os.path.join(folder, "catalog.json"), "w") as f:
        json.dump({"type": "Catalog", "id": "static", "stac_version": "1.0.0",
                   "description": "a static catalogue",
                   "links": [{"rel": "root", "href": "./catalog.json"}]
                   + [{"rel": "child", "href": f"./{c}/collection.json"} for c in data.collections]}, f)
    for c in data.collections:
        os.makedirs(os.path.join(folder, c, "items"), exist_ok=True)
        items = [i for i in range(data.n) if data.collections[i % len(data.collections)] == c]
        with open(os.path.join(folder, c, "collection.json"), "w") as f:
            json.dump({"type": "Collection", "id": c, "stac_version": "1.0.0",
                       "description": c, "license": "CC-BY-4.0",
                       "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                                  "temporal": {"interval": [[iso(START), None]]}},
                       "links": [{"rel": "parent", "href": "../catalog.json"}]
                       + [{"rel": "item", "href": f"./items/{c}-{i:06d}.json"} for i in items]}, f)
        for i in items:
            with open(os.path.join(folder, c, "items", f"{c}-{i:06d}.json"), "w") as f:
                json.dump(data.item(i, base), f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--collections", default="sentinel-2-l2a")
    ap.add_argument("--page-size", type=int, default=100,
                    help="items per page when the request gives no limit; rows per /pages/N")
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--log", default=None, help="request log (JSON lines)")
    ap.add_argument("--fault", action="append", default=[])
    ap.add_argument("--post-merge", action="store_true",
                    help="POST next links carry only the token, with merge: true")
    ap.add_argument("--write-static", default=None, metavar="DIR",
                    help="write the static catalogue to DIR and exit")
    args = ap.parse_args()
    state = State(args)
    if args.write_static:
        write_static(state, args.write_static)
        return
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(state))
    server.daemon_threads = True
    server.request_queue_size = 128
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
