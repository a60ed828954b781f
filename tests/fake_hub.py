"""A local stand-in for the Hugging Face hub's HTTP API: the part `create_repo` + `upload_folder` use, served on
127.0.0.1 so a push runs huggingface_hub's real requests (`HF_ENDPOINT` points at it) without the network.

Like the hub it refuses writes without a token, validates the model card's YAML front matter, and keeps what a commit
uploads. Every file is asked for as a regular (base64-in-the-commit) upload, so no LFS or Xet storage is needed.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, Any]] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, method: str, path: str, token: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
        path = path.split("?")[0]
        if method != "POST":
            return 404, {"error": f"not served here: {path}"}
        if path == "/api/validate-yaml":
            return _validate_card(json.loads(body)["content"])
        if not token:
            return 401, {"error": "Invalid username or password."}
        if path == "/api/repos/create":
            req = json.loads(body)
            repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
            visibility = req.get("visibility") or ("private" if req.get("private") else "public")
            self.repos.setdefault(repo_id, {"visibility": visibility, "files": {}, "commits": []})
            return 200, {"url": f"{self.url}/{repo_id}"}
        if path.startswith("/api/models/") and "/preupload/" in path:
            files = json.loads(body)["files"]
            return 200, {
                "files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
            }
        if path.startswith("/api/models/") and "/commit/" in path:
            repo_id = path[len("/api/models/") :].split("/commit/")[0]
            repo = self.repos.get(repo_id)
            if repo is None:
                return 404, {"error": "Repository not found"}
            for line in body.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "header":
                    repo["commits"].append(item["value"]["summary"])
                elif item["key"] == "file":
                    repo["files"][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            oid = f"{len(repo['commits']):040x}"
            return 200, {"commitUrl": f"{self.url}/{repo_id}/commit/{oid}", "commitOid": oid, "success": True}
        return 404, {"error": f"not served here: {path}"}


def _validate_card(text: str) -> tuple[int, dict[str, Any]]:
    """The front matter of a README.md must be a YAML mapping; `base_model` a string or a list of strings."""
    if not text.startswith("---\n"):
        return 200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]}
    try:
        meta = yaml.safe_load(text[4:].split("\n---\n", 1)[0])
    except yaml.YAMLError as e:
        return 400, {"errors": [{"message": f"invalid YAML: {e}"}]}
    base = meta.get("base_model") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or not (
        base is None
        or isinstance(base, str)
        or (isinstance(base, list) and all(isinstance(b, str) for b in base))
    ):
        return 400, {"errors": [{"message": '"base_model" must be a string or a list of strings'}]}
    return 200, {"errors": [], "warnings": []}


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding") == "chunked":
                out = b""
                while size := int(self.rfile.readline().strip(), 16):
                    out += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
                return out
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self, method: str) -> None:
            auth = self.headers.get("Authorization") or ""
            token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
            code, obj = hub.answer(method, self.path, token, self._body() if method == "POST" else b"")
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_HEAD(self) -> None:
            self._serve("HEAD")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler
