"""A local stand-in for the Hugging Face hub's HTTP API, served on 127.0.0.1 so the hub code paths run
huggingface_hub's, transformers' and datasets' real requests (`HF_ENDPOINT` points at it) without the network.

It serves the repos it holds the way `hf_hub_download`, `from_pretrained` and `datasets.load_dataset` read them (repo
info, file tree, paths info, file metadata, files), with the hub's error codes for a missing repo or file. Like the
hub it refuses writes without a token, validates a pushed model card's YAML front matter, and keeps what a commit
uploads; every file is asked for as a regular (base64-in-the-commit) upload, so no LFS or Xet storage is needed.
Repos are keyed as in the hub's URLs: `owner/name` for a model, `datasets/owner/name` for a dataset. A repo holds
one file set per commit; a revision (branch, tag or commit sha) picks one, `main` by default.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

NAME = r"(?P<repo>[\w.-]+/[\w.-]+)"


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_repo(self, key: str, files: dict[str, bytes], revision: str = "main") -> str:
        """Serve `files` as revision `revision` of the repo `key` (`owner/name` or `datasets/owner/name`); returns
        the commit sha."""
        sha = hashlib.sha1(repr(sorted(files.items())).encode()).hexdigest()
        repo = self.repos.setdefault(key, _new_repo("public"))
        repo["refs"][revision] = sha
        repo["trees"][sha] = dict(files)
        if revision == "main":
            repo["files"] = repo["trees"][sha]
        return sha

    def env(self, home: Path, token: str | None = None) -> dict[str, str]:
        """This process's environment for a child that talks to this hub: no HF_* settings of ours (offline mode,
        tokens) and no proxy, HF_ENDPOINT here, a fresh HF_HOME (cache, stored token) in `home`."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("HF_", "HUGGING_FACE_")) and not k.lower().endswith("_proxy")
        }
        env.update(HF_ENDPOINT=self.url, HF_HOME=str(home))
        if token:
            env["HF_TOKEN"] = token
        return env

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(
        self, method: str, path: str, token: str | None, body: bytes
    ) -> tuple[int, dict[str, str], bytes | Any]:
        """(status, extra headers, body: bytes, or an object sent as JSON)."""
        path = path.split("?")[0]
        self.requests.append(f"{method} {path}")
        if method == "POST":
            return self._post(path, token, body)
        if m := re.fullmatch(rf"/(?P<kind>datasets/)?{NAME}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path):
            return self._file(m["kind"] or "", m["repo"], m["rev"], m["file"])
        if m := re.fullmatch(rf"/api/(?P<kind>models|datasets)/{NAME}(?P<rest>/.*)?", path):
            key = ("datasets/" if m["kind"] == "datasets" else "") + m["repo"]
            repo = self.repos.get(key)
            if repo is None:
                return 401, {"X-Error-Code": "RepoNotFound"}, {"error": "Repository not found"}
            rest = m["rest"] or ""
            r = re.fullmatch("(?:/revision/(?P<rev>[^/]+))?|/tree/(?P<tree>[^/]+)(?P<dir>/.*)?", rest)
            if r is None:
                return 404, {}, {"error": f"not served here: {path}"}
            rev = unquote(r["rev"] or r["tree"] or "main")
            sha = repo["refs"].get(rev, rev)
            if sha not in repo["trees"]:
                return 404, {"X-Error-Code": "RevisionNotFound"}, {"error": "Invalid rev id"}
            if r["tree"] is None:
                return 200, {}, self._info(m["repo"], sha, repo["trees"][sha])
            return 200, {}, self._tree(repo["trees"][sha], (r["dir"] or "").strip("/"))
        return 404, {}, {"error": f"not served here: {path}"}

    def _info(self, repo_id: str, sha: str, files: dict[str, bytes]) -> dict[str, Any]:
        return {
            "id": repo_id,
            "sha": sha,
            "private": False,
            "siblings": [{"rfilename": f} for f in sorted(files)],
            "lastModified": "2026-01-01T00:00:00.000Z",
        }

    def _entry(self, path: str, data: bytes) -> dict[str, Any]:
        return {"type": "file", "path": path, "size": len(data), "oid": _git_oid(data)}

    def _tree(self, files: dict[str, bytes], folder: str) -> list[dict[str, Any]]:
        prefix = f"{folder}/" if folder else ""
        entries, dirs = [], set()
        for name, data in sorted(files.items()):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            if "/" in rest:
                dirs.add(prefix + rest.split("/")[0])
            else:
                entries.append(self._entry(name, data))
        return [{"type": "directory", "path": d, "oid": "0" * 40} for d in sorted(dirs)] + entries

    def _file(self, kind: str, repo_id: str, rev: str, name: str) -> tuple[int, dict[str, str], bytes | Any]:
        repo = self.repos.get(kind + repo_id)
        if repo is None:
            return 401, {"X-Error-Code": "RepoNotFound"}, {"error": "Repository not found"}
        sha = repo["refs"].get(unquote(rev), unquote(rev))
        if sha not in repo["trees"]:
            return 404, {"X-Error-Code": "RevisionNotFound"}, {"error": "Invalid rev id"}
        files = repo["trees"][sha]
        if name not in files:
            return 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": sha}, {"error": "Entry not found"}
        return 200, {"X-Repo-Commit": sha, "ETag": f'"{_git_oid(files[name])}"'}, files[name]

    def _post(self, path: str, token: str | None, body: bytes) -> tuple[int, dict[str, str], Any]:
        if path == "/api/validate-yaml":
            code, obj = _validate_card(json.loads(body)["content"])
            return code, {}, obj
        if m := re.fullmatch(rf"/api/(?P<kind>models|datasets)/{NAME}/paths-info/(?P<rev>[^/]+)", path):
            repo = self.repos.get(("datasets/" if m["kind"] == "datasets" else "") + m["repo"])
            if repo is None:
                return 401, {"X-Error-Code": "RepoNotFound"}, {"error": "Repository not found"}
            files = repo["trees"].get(repo["refs"].get(unquote(m["rev"]), unquote(m["rev"])), {})
            asked = json.loads(body or b"{}").get("paths") or []
            return 200, {}, [self._entry(p, files[p]) for p in asked if p in files]
        if not token:
            return 401, {}, {"error": "Invalid username or password."}
        if path == "/api/repos/create":
            req = json.loads(body)
            repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
            visibility = req.get("visibility") or ("private" if req.get("private") else "public")
            self.repos.setdefault(repo_id, _new_repo(visibility))
            return 200, {}, {"url": f"{self.url}/{repo_id}"}
        if path.startswith("/api/models/") and "/preupload/" in path:
            files = json.loads(body)["files"]
            modes = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
            return 200, {}, {"files": modes}
        if path.startswith("/api/models/") and "/commit/" in path:
            repo_id = path[len("/api/models/") :].split("/commit/")[0]
            repo = self.repos.get(repo_id)
            if repo is None:
                return 404, {"X-Error-Code": "RepoNotFound"}, {"error": "Repository not found"}
            for line in body.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "header":
                    repo["commits"].append(item["value"]["summary"])
                elif item["key"] == "file":
                    repo["files"][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            oid = f"{len(repo['commits']):040x}"
            return (
                200,
                {},
                {"commitUrl": f"{self.url}/{repo_id}/commit/{oid}", "commitOid": oid, "success": True},
            )
        return 404, {}, {"error": f"not served here: {path}"}


def _new_repo(visibility: str) -> dict[str, Any]:
    """An empty repo: `main` points at a commit with no files; `files` is main's file set, which pushes write to."""
    files: dict[str, bytes] = {}
    return {
        "visibility": visibility,
        "refs": {"main": "0" * 40},
        "trees": {"0" * 40: files},
        "files": files,
        "commits": [],
    }


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


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
            code, headers, obj = hub.answer(
                method, self.path, token, self._body() if method == "POST" else b""
            )
            data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
            self.send_response(code)
            for name, value in headers.items():
                self.send_header(name, value)
            if not isinstance(obj, bytes):
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
