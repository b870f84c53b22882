"""`llavauhd serve` through the real `openai` client, against live servers on 127.0.0.1 with the
tiny small-noslice model: greedy answers equal to Session.chat (one turn with an image, and a
multi-turn conversation), sampled answers equal for the same seed, streaming equal to the whole
answer, usage counts, stop strings, concurrent requests, a full queue (503), a client that goes
away (the server stops its answer and serves the next request), the 4xx errors in OpenAI's
shape (unknown routes and methods included), and the cache and batching flags. Hostile
requests (issue 12): malformed and lying JSON, out-of-range numbers, bad data: URLs, wrong
content types, clients that leave mid-body or mid-answer, 40 connections at once, and images
sent to a text-only model all end in a JSON answer or a 4xx/503 JSON error, and the server
keeps serving. The server binary is $LLAVAUHD_CLI (default: the shipping build's build/bin/llavauhd)."""
import base64
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from conftest import REPO, UPSTREAM

import llavauhd

CLI = Path(os.environ.get("LLAVAUHD_CLI", REPO / "build" / "bin" / "llavauhd"))
CASE = "small-noslice"
QUESTION = "What animal is this?"
IMAGE = UPSTREAM / CASE / "input.png"
DATA_URL = "data:image/png;base64," + base64.b64encode(IMAGE.read_bytes()).decode()


class Server:
    """A `llavauhd serve` process on a free loopback port, its log collected line by line."""

    def __init__(self, model: Path, *args: str) -> None:
        self.log: list[str] = []
        self.process = subprocess.Popen(
            [str(CLI), "serve", "--model", str(model), "--host", "127.0.0.1", "--port", "0", "--threads", "1",
             "--preresize", "0", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ready = threading.Event()
        self.port = 0

        def read() -> None:
            for line in self.process.stderr:
                self.log.append(line.rstrip("\n"))
                m = re.search(r"serving .* on http://127\.0\.0\.1:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60) or not self.port:
            self.close()
            raise RuntimeError("the server did not start:\n" + "\n".join(self.log))
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = openai.OpenAI(base_url=self.url + "/v1", api_key="unused", max_retries=0, timeout=120)

    def post(self, path: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
        request = urllib.request.Request(self.url + path, data=body, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=60) as response:
            return json.loads(response.read())

    def call(self, method: str, path: str) -> tuple[int, dict, dict]:
        """Any method on any path: the status, the JSON body and the headers."""
        request = urllib.request.Request(self.url + path, method=method,
                                         data=b"{}" if method in ("POST", "PUT", "PATCH") else None)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read()), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read()), dict(error.headers)

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def model_dir(assets) -> Path:
    if not CLI.is_file():
        pytest.fail(f"{CLI} missing: run 'make ship' (or set LLAVAUHD_CLI)")
    return assets / "models" / CASE


@pytest.fixture(scope="module")
def server(model_dir):
    s = Server(model_dir, "--parallel", "2", "--queue", "8", "--max-images", "2", "--max-body-bytes", "1000000",
               "--max-image-pixels", "100000", "--image-dir", str(UPSTREAM / CASE))
    yield s
    s.close()


@pytest.fixture(scope="module")
def local(model_dir):
    """The same model through the library, for the reference answers."""
    with llavauhd.Model(model_dir) as m:
        yield m


def user(text: str, *image_urls: str) -> dict:
    return {"role": "user", "content": [{"type": "image_url", "image_url": {"url": u}} for u in image_urls]
            + [{"type": "text", "text": text}]}


def test_models_and_health(server):
    assert [m.id for m in server.client.models.list().data] == [CASE]
    health = server.get("/health")
    assert health["status"] == "ok" and health["sessions"] == 2 and health["model"] == CASE


def test_greedy_answer_equals_session_chat(server, local):
    with llavauhd.Session(local, preresize_long_side=0) as s:
        expected = s.chat(QUESTION, images=[llavauhd.Image.open(IMAGE)], sampling=llavauhd.Sampling(max_new_tokens=8))
        stats = s.last_stats
    reply = server.client.chat.completions.create(model=CASE, messages=[user(QUESTION, DATA_URL)],
                                                  max_tokens=8, temperature=0)
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == expected
    assert choice.finish_reason == ("length" if stats.stop_reason == llavauhd.StopReason.MAX_TOKENS else "stop")
    assert reply.usage.prompt_tokens == stats.n_prompt_positions
    assert reply.usage.completion_tokens == stats.n_generated
    assert reply.usage.total_tokens == stats.n_prompt_positions + stats.n_generated
    assert reply.object == "chat.completion" and reply.model == CASE and reply.id.startswith("chatcmpl-")


def test_text_only_and_system_prompt_equal_session_chat(server, local):
    with llavauhd.Session(local, system_prompt="Answer briefly.") as s:
        expected = s.chat("Hello there", sampling=llavauhd.Sampling(max_new_tokens=6))
    reply = server.client.chat.completions.create(
        model=CASE, max_tokens=6,
        messages=[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Hello there"}])
    assert reply.choices[0].message.content == expected


def test_multi_turn_conversation_equals_session_chat(server, local):
    with llavauhd.Session(local, preresize_long_side=0) as s:
        first = s.chat(QUESTION, images=[llavauhd.Image.open(IMAGE)], sampling=llavauhd.Sampling(max_new_tokens=6))
        second = s.chat("And its colour?", sampling=llavauhd.Sampling(max_new_tokens=6))
    messages = [user(QUESTION, DATA_URL)]
    a1 = server.client.chat.completions.create(model=CASE, messages=messages, max_tokens=6)
    assert a1.choices[0].message.content == first
    messages += [{"role": "assistant", "content": first}, {"role": "user", "content": "And its colour?"}]
    a2 = server.client.chat.completions.create(model=CASE, messages=messages, max_tokens=6)
    assert a2.choices[0].message.content == second


def test_sampling_parameters_and_seed(server, local):
    with llavauhd.Session(local, preresize_long_side=0) as s:
        expected = s.chat(QUESTION, images=[llavauhd.Image.open(IMAGE)], sampling=llavauhd.Sampling(
            max_new_tokens=8, temperature=0.9, top_p=0.95, seed=1234))
    answers = {server.client.chat.completions.create(model=CASE, messages=[user(QUESTION, DATA_URL)], max_tokens=8,
                                                     temperature=0.9, top_p=0.95, seed=1234).choices[0].message.content
               for _ in range(2)}
    assert answers == {expected}


def test_stop_string(server, local):
    with llavauhd.Session(local, preresize_long_side=0) as s:
        full = s.chat(QUESTION, images=[llavauhd.Image.open(IMAGE)], sampling=llavauhd.Sampling(max_new_tokens=8))
    stop = full[len(full) // 2:][:3]
    assert stop
    with llavauhd.Session(local, preresize_long_side=0) as s:
        expected = s.chat(QUESTION, images=[llavauhd.Image.open(IMAGE)],
                          sampling=llavauhd.Sampling(max_new_tokens=8, stop=(stop,)))
    reply = server.client.chat.completions.create(model=CASE, messages=[user(QUESTION, DATA_URL)], max_tokens=8,
                                                  stop=stop)
    assert reply.choices[0].message.content == expected == full[:full.index(stop)]
    assert reply.choices[0].finish_reason == "stop"


def test_streaming_equals_the_whole_answer(server):
    whole = server.client.chat.completions.create(model=CASE, messages=[user(QUESTION, DATA_URL)], max_tokens=8)
    chunks = list(server.client.chat.completions.create(model=CASE, messages=[user(QUESTION, DATA_URL)], max_tokens=8,
                                                        stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert all(c.id == chunks[0].id and c.object == "chat.completion.chunk" for c in chunks)


def test_local_image_files_only_under_image_dir(server):
    by_data = server.client.chat.completions.create(model=CASE, messages=[user(QUESTION, DATA_URL)], max_tokens=6)
    for url in (str(IMAGE), IMAGE.as_uri()):
        by_path = server.client.chat.completions.create(model=CASE, messages=[user(QUESTION, url)], max_tokens=6)
        assert by_path.choices[0].message.content == by_data.choices[0].message.content
    outside = UPSTREAM / "coffee-v2-mask7" / "input.png"
    for url in (str(outside), str(UPSTREAM / CASE / ".." / "coffee-v2-mask7" / "input.png"), "input.png",
                "https://example.com/cat.png"):
        with pytest.raises(openai.BadRequestError) as e:
            server.client.chat.completions.create(model=CASE, messages=[user(QUESTION, url)], max_tokens=2)
        assert e.value.body["code"] in ("image_unreadable", "unsupported_image_url")


def test_concurrent_requests_all_answer_the_same(server):
    reference = server.client.chat.completions.create(model=CASE, messages=[user(QUESTION, DATA_URL)], max_tokens=8)

    def ask(_):
        return server.client.chat.completions.create(model=CASE, messages=[user(QUESTION, DATA_URL)],
                                                     max_tokens=8).choices[0].message.content

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(ask, range(6)))
    assert answers == [reference.choices[0].message.content] * 6


@pytest.mark.parametrize("body, status, code", [
    (b"{not json", 400, None),
    (json.dumps({"messages": []}).encode(), 400, None),
    (json.dumps({"messages": [{"role": "assistant", "content": "hi"}]}).encode(), 400, None),
    (json.dumps({"messages": [{"role": "user", "content": "hi"}], "n": 2}).encode(), 400, None),
    (json.dumps({"messages": [{"role": "user", "content": "hi"}], "temperature": 5}).encode(), 400, None),
    (json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}).encode(), 400, None),
    (json.dumps({"messages": [{"role": "user", "content": "a <image> b"}]}).encode(), 400, None),
    (json.dumps({"messages": [user("hi", "data:image/png;base64,!!!")]}).encode(), 400, "bad_image"),
    (json.dumps({"messages": [user("hi", "data:image/png;base64," + base64.b64encode(b"not a png").decode())]})
     .encode(), 400, "bad_image"),
    (json.dumps({"messages": [user("hi", DATA_URL, DATA_URL, DATA_URL)]}).encode(), 400, "too_many_images"),
    (json.dumps({"messages": [user("hi", "data:image/png;base64," + base64.b64encode(
        (UPSTREAM / "coffee-v2-mask7" / "input.png").read_bytes()).decode())]}).encode(), 400, "image_too_large"),
    (json.dumps({"messages": [{"role": "user", "content": "x" * 1_100_000}]}).encode(), 413, "request_too_large"),
])
def test_errors_are_openai_shaped(server, body, status, code):
    got, payload = server.post("/v1/chat/completions", body)
    assert got == status, payload
    error = payload["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["type"] == "invalid_request_error"
    if code:
        assert error["code"] == code


@pytest.mark.parametrize("method, path, status, code, allow", [
    ("GET", "/v1/nothing", 404, "unknown_url", None),
    ("POST", "/v2/chat/completions", 404, "unknown_url", None),
    ("GET", "/", 404, "unknown_url", None),
    ("GET", "/v1/chat/completions", 405, "method_not_allowed", "POST"),
    ("DELETE", "/v1/models", 405, "method_not_allowed", "GET"),
    ("POST", "/health", 405, "method_not_allowed", "GET"),
])
def test_unknown_routes_and_methods_are_openai_shaped(server, method, path, status, code, allow):
    got, payload, headers = server.call(method, path)
    assert got == status, payload
    error = payload["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["type"] == "invalid_request_error" and error["code"] == code and error["param"] is None
    assert headers.get("Allow") == allow
    assert headers.get("Content-Type") == "application/json"


def test_openai_client_raises_not_found(server):
    with pytest.raises(openai.NotFoundError) as e:
        server.client.get("/nothing", cast_to=dict)
    assert e.value.status_code == 404 and e.value.body["code"] == "unknown_url"


def test_cache_and_batch_flags_are_checked(model_dir):
    for flag, value in (("--max-decode-batch", "0"), ("--max-decode-batch", "65"), ("--prefix-cache-bytes", "-1"),
                        ("--image-cache-bytes", "-1")):
        run = subprocess.run([str(CLI), "serve", "--model", str(model_dir), "--port", "0", f"{flag}={value}"],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode != 0 and flag in run.stderr, (flag, value, run.stderr)
    helped = subprocess.run([str(CLI), "serve", "--help"], capture_output=True, text=True, timeout=60).stdout
    assert all(f in helped for f in ("--prefix-cache-bytes", "--image-cache-bytes", "--max-decode-batch"))


@pytest.mark.parametrize("prefix_cache_bytes", [0, 64 << 20])
def test_prefix_cache_flag_reuses_another_sessions_rows(model_dir, prefix_cache_bytes):
    """One session; a request with another system prompt replaces it, so the third request
    (as the first) runs on a new session: with --prefix-cache-bytes it reuses the first's rows
    from the model's prefix cache, without it it recomputes them; the answer is the same."""
    s = Server(model_dir, "--parallel", "1", "--prefix-cache-bytes", str(prefix_cache_bytes), "--max-decode-batch", "4")
    try:
        def ask(system: str, *content) -> tuple[str, int]:
            reply = s.client.chat.completions.create(
                model=CASE, max_tokens=4, messages=[{"role": "system", "content": system}, user(*content)])
            deadline = time.time() + 30  # the result line may follow the answer by a moment
            while True:
                lines = [line for line in s.log if reply.id in line and " 200 " in line]
                if lines or time.time() > deadline:
                    break
                time.sleep(0.05)
            assert len(lines) == 1, "\n".join(s.log)
            return reply.choices[0].message.content, int(re.search(r"\((\d+) reused\)", lines[0]).group(1))

        first, reused_first = ask("Look closely.", QUESTION, DATA_URL)
        ask("Something else.", "hi")
        again, reused_again = ask("Look closely.", QUESTION, DATA_URL)
        assert reused_first == 0 and again == first
        assert (reused_again > 0) == (prefix_cache_bytes > 0), "\n".join(s.log)
        assert f"prefix cache {prefix_cache_bytes} bytes, decode batch 4" in "\n".join(s.log)
    finally:
        s.close()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


def data_url(data: bytes, media: str = "image/png") -> str:
    return f"data:{media};base64," + base64.b64encode(data).decode()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (its data is one empty row)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))


def hi(**fields) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": "hi"}], **fields}).encode()


HOSTILE_BODIES = [
    ("temperature-1e999", b'{"messages": [{"role": "user", "content": "hi"}], "temperature": 1e999}', None),
    ("temperature-string", hi(temperature="0.5"), "temperature"),
    ("max-tokens-negative", hi(max_tokens=-5), "max_tokens"),
    ("max-tokens-2^63", hi(max_tokens=2**63), "max_tokens"),
    ("max-tokens-1e999", b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e999}', None),
    ("max-tokens-fraction", hi(max_tokens=2.5), "max_tokens"),
    ("max-completion-tokens-0", hi(max_completion_tokens=0), "max_completion_tokens"),
    ("n-string", hi(n="1"), "n"),
    ("n-1000", hi(n=1000), "n"),
    ("seed-huge", hi(seed=2**70), "seed"),
    ("top-p-0", hi(top_p=0), "top_p"),
    ("stop-1000-strings", hi(stop=[f"s{i}" for i in range(1000)]), "stop"),
    ("stop-empty-string", hi(stop=[""]), "stop"),
    ("stop-number", hi(stop=[7]), "stop"),
    ("stream-string", hi(stream="yes"), "stream"),
    ("body-array", b"[1, 2]", None),
    ("body-empty", b"", None),
    ("body-invalid-utf8", b'{"messages": [{"role": "user", "content": "\xff"}]}', None),
    ("body-lone-surrogate", b'{"messages": [{"role": "user", "content": "\\ud800"}]}', None),
    ("body-deep-nesting", b"[" * 100000 + b"]" * 100000, None),
    ("messages-string", json.dumps({"messages": "hi"}).encode(), "messages"),
    ("message-number", json.dumps({"messages": [1]}).encode(), "messages[0]"),
    ("role-tool", json.dumps({"messages": [{"role": "tool", "content": "x"}]}).encode(), "messages[0]"),
    ("content-object", json.dumps({"messages": [{"role": "user", "content": {}}]}).encode(), "messages[0].content"),
    ("part-audio", json.dumps({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}).encode(),
     "messages[0].content[0]"),
    ("image-url-missing", json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}).encode(),
     "messages[0].content[0]"),
    ("system-after-user", json.dumps({"messages": [{"role": "user", "content": "a"},
                                                   {"role": "system", "content": "b"}]}).encode(), "messages[1]"),
    ("image-svg", json.dumps({"messages": [user("hi", data_url(SVG, "image/svg+xml"))]}).encode(), "image 1"),
    ("image-not-base64-url", json.dumps({"messages": [user("hi", "data:image/png,rawbytes")]}).encode(), "image 1"),
    ("image-empty", json.dumps({"messages": [user("hi", "data:image/png;base64,")]}).encode(), "image 1"),
    ("image-base64-with-spaces", json.dumps({"messages": [user("hi", "data:image/png;base64,iVBO Rw0K")]}).encode(),
     "image 1"),
    ("image-random-bytes", json.dumps({"messages": [user("hi", data_url(os.urandom(600_000)))]}).encode(), "image 1"),
    ("image-truncated-png", json.dumps({"messages": [user("hi", data_url(IMAGE.read_bytes()[:2000]))]}).encode(),
     "image 1"),
    ("image-gif", json.dumps({"messages": [user("hi", data_url(b"GIF89a" + b"\0" * 64, "image/gif"))]}).encode(),
     "image 1"),
    ("image-bomb", json.dumps({"messages": [user("hi", data_url(png_header(100000, 100000)))]}).encode(), "image 1"),
    ("image-url-number", json.dumps({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": 5}}]}]}).encode(), "messages[0].content[0]"),
    ("image-in-history-bad", json.dumps({"messages": [user("a", "data:image/png;base64,!!"), {"role": "assistant",
                                                      "content": "b"}, user("c")]}).encode(), "image 1"),
    ("image-http", json.dumps({"messages": [user("hi", "http://127.0.0.1:1/x.png")]}).encode(), "image 1"),
    ("image-path-traversal", json.dumps({"messages": [user("hi", "file:///etc/passwd")]}).encode(), "image 1"),
]


@pytest.mark.parametrize("name, body, param", HOSTILE_BODIES, ids=[b[0] for b in HOSTILE_BODIES])
def test_hostile_bodies_are_400_json(server, name, body, param):
    got, payload = server.post("/v1/chat/completions", body)
    assert got == 400, payload
    error = payload["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["type"] == "invalid_request_error"
    if param:
        assert error["param"] == param, error


def test_wrong_content_type_is_read_as_json(server):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "image/png"):
        got, payload = server.post("/v1/chat/completions", hi(max_tokens=1), content_type)
        assert got == 200 and payload["usage"]["completion_tokens"] == 1, payload


def raw_request(server, data: bytes, read: bool = False) -> bytes:
    """Sends raw bytes on a new connection and closes it (after reading the reply if `read`)."""
    import socket
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(data)
        if not read:
            return b""
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        return reply


def test_clients_that_go_away_or_lie_leave_the_server_serving(server):
    body = hi(max_tokens=40)
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    raw_request(server, head + body[:10])  # gone mid-body
    raw_request(server, head + body)  # gone before the answer
    raw_request(server, head.replace(str(len(body)).encode(), b"99999999999999999999") + body)
    raw_request(server, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"fffffffffffffff\r\n" + body)
    reply = raw_request(server, b"GARBAGE / HTTP/9.9\r\n\r\n", read=True)
    assert reply == b"" or reply.startswith(b"HTTP/1.1 4")
    for _ in range(3):  # a streaming client that leaves after the first chunk
        stream = server.client.chat.completions.create(model=CASE, messages=[{"role": "user", "content": "Tell"}],
                                                       max_tokens=200, stream=True)
        next(iter(stream))
        stream.close()
    assert server.get("/health")["status"] == "ok"
    reply = server.client.chat.completions.create(model=CASE, messages=[{"role": "user", "content": "hi"}],
                                                  max_tokens=2)
    assert reply.usage.completion_tokens == 2


def test_many_concurrent_connections_get_answers_or_503(model_dir):
    s = Server(model_dir, "--parallel", "2", "--queue", "3")
    try:
        def ask(i):
            return s.post("/v1/chat/completions", hi(max_tokens=4, seed=i))

        with ThreadPoolExecutor(40) as pool:
            replies = list(pool.map(ask, range(40)))
        codes = [code for code, _ in replies]
        assert set(codes) <= {200, 503} and 200 in codes, codes
        for code, payload in replies:
            if code == 503:
                assert payload["error"]["code"] == "server_busy"
            else:
                assert payload["usage"]["completion_tokens"] >= 1
        deadline = time.time() + 30  # the last sessions go back to the pool just after answering
        while s.get("/health")["busy"] and time.time() < deadline:
            time.sleep(0.1)
        assert s.get("/health")["busy"] == 0
    finally:
        s.close()


def test_text_only_server_refuses_images_with_400(text_gguf, tmp_path_factory):
    path = tmp_path_factory.mktemp("text-only") / "text.gguf"
    path.write_bytes(text_gguf.encode())
    s = Server(path)
    try:
        got, payload = s.post("/v1/chat/completions", json.dumps({"messages": [user("hi", DATA_URL)]}).encode())
        assert got == 400 and payload["error"]["code"] == "images_not_supported", payload
        got, payload = s.post("/v1/chat/completions", hi(max_tokens=2))
        assert got == 200 and payload["usage"]["completion_tokens"] >= 1, payload
    finally:
        s.close()


@pytest.mark.parametrize("flags, message", [
    (["--timeout", "1e300"], "--timeout"),  # used to trap when the first request armed its deadline
    (["--timeout", "nan"], "--timeout"),
    (["--threads", "3000000000"], "--threads"),  # used to trap in the first parallel loop
    (["--port", "70000"], "--port"),
    (["--parallel", "0"], "--parallel"),
])
def test_out_of_range_flags_are_refused_at_start(model_dir, flags, message):
    result = subprocess.run([str(CLI), "serve", "--model", str(model_dir), "--port", "0", *flags],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_openai_client_raises_its_error_classes(server):
    with pytest.raises(openai.BadRequestError):
        server.client.chat.completions.create(model=CASE, messages=[{"role": "user", "content": "hi"}], temperature=3)


def test_full_queue_is_503_and_a_gone_client_frees_its_session(model_dir):
    s = Server(model_dir, "--parallel", "1", "--queue", "0")
    try:
        long = [{"role": "user", "content": "Tell me a long story."}]
        stream = s.client.chat.completions.create(model=CASE, messages=long, max_tokens=100000, stream=True)
        first = next(iter(stream))
        assert first.choices[0].delta.role == "assistant"
        with pytest.raises(openai.InternalServerError) as e:
            s.client.chat.completions.create(model=CASE, messages=long, max_tokens=2)
        assert e.value.status_code == 503 and e.value.body["code"] == "server_busy"
        stream.close()  # the client goes away mid-answer
        deadline = time.time() + 30
        while not any(" 499 " in line for line in s.log) and time.time() < deadline:
            time.sleep(0.1)
        assert any(" 499 " in line for line in s.log), "\n".join(s.log)
        reply = s.client.chat.completions.create(model=CASE, messages=long, max_tokens=2)
        assert reply.usage.completion_tokens == 2
        assert any("prefill" in line for line in s.log) and any("tokens/s" in line for line in s.log)
    finally:
        s.close()
