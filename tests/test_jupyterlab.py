"""JupyterLab serves the notebooks and runs their cells on the project's kernel.

Starts a real, headless JupyterLab server on localhost, lists the chapter notebooks through
the REST API (contents), starts a ``python3`` kernel (kernels API) and executes a cell of a
chapter notebook over the kernel's websocket channel, as the browser front end does.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid

import pytest

requests = pytest.importorskip("requests")
websocket = pytest.importorskip("websocket")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(repo_root, tmp_path_factory):
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path_factory.mktemp("runtime")),
               PYTHONPATH=os.pathsep.join(filter(None, [str(repo_root / "lib"), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={repo_root}",
         "--ServerApp.open_browser=False", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"token {token}"}
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if requests.get(f"{base}/api/status", headers=headers, timeout=2).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("jupyter lab did not answer within 90 s")
    yield base, headers, token
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _execute(base: str, token: str, kernel_id: str, code: str, timeout: float = 120) -> tuple[str, dict]:
    url = base.replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels?token={token}"
    ws = websocket.create_connection(url, timeout=timeout)
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }))
    stdout, reply, idle = [], None, False
    deadline = time.time() + timeout
    # The reply (shell) can overtake the output (iopub): read until the kernel reports idle.
    while time.time() < deadline and not (reply is not None and idle):
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            stdout.append(msg["content"]["text"])
        elif msg["msg_type"] == "execute_reply":
            reply = msg["content"]
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            idle = True
    ws.close()
    assert reply is not None, "no execute_reply from the kernel"
    return "".join(stdout), reply


def test_lists_notebooks_and_runs_a_cell(server, repo_root):
    base, headers, token = server
    listing = requests.get(f"{base}/api/contents/notebooks", headers=headers, timeout=10).json()
    names = sorted(item["name"] for item in listing["content"] if item["type"] == "notebook")
    expected = sorted(p.name for p in (repo_root / "notebooks").glob("*.ipynb"))
    assert names == expected and names

    nb = requests.get(f"{base}/api/contents/notebooks/{names[0]}", headers=headers, timeout=10).json()
    params = next(c for c in nb["content"]["cells"] if "parameters" in c["metadata"].get("tags", []))

    kernel = requests.post(f"{base}/api/kernels", json={"name": "python3"}, headers=headers, timeout=30).json()
    try:
        code = params["source"] + "\nimport heatmaploss\nprint('PROFILE', profile)\nprint('LIB', heatmaploss.__file__)"
        out, reply = _execute(base, token, kernel["id"], code)
        assert reply["status"] == "ok", reply
        assert "PROFILE " in out
        lib_line = next(line for line in out.splitlines() if line.startswith("LIB "))
        assert os.path.realpath(lib_line[4:]).startswith(os.path.realpath(repo_root / "lib"))
    finally:
        requests.delete(f"{base}/api/kernels/{kernel['id']}", headers=headers, timeout=10)
