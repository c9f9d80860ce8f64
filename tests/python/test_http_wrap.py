"""qstar.HttpGenerator / qstar.HttpVerifier against a fake OpenAI-compatible server (Python's
http.server on loopback): they search, and wrapped in Python plug-ins that delegate to their
expand / score_steps / score_outcomes they give the same results as alone."""
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

qstar = pytest.importorskip("qstar")
if not qstar.has_http:
    pytest.skip("this qstar was built without qstar::http", allow_module_level=True)
from helpers import KNOB, WRAP_PUZZLES as PUZZLES, same_results  # noqa: E402

TAG = " <s>"
STEPS = ["4 + 5 = 9 (left: 6 9 10)", "10 - 6 = 4 (left: 4 9)", "1 + 2 = 3 (left: 3 4 7)", "3 * 8 = 24 (left: 3 24)",
         "Answer: (10 - 6) * (9 - 5) = 24", "8 / 8 = 1 (left: 1 3 3)", "Answer: 4 * 6 = 24"]


def _hash(*parts):
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "little")


def completions(body):
    """One choice per n, a pure function of (prompt, seed, index): same request, same reply."""
    choices = []
    for i in range(body["n"]):
        text = STEPS[_hash(body["prompt"], body.get("seed"), body["temperature"], i) % len(STEPS)]
        ntok = min(len(text.split()), body["max_tokens"])
        choices.append({"index": i, "text": text + "\n", "finish_reason": "stop", "stop_reason": "\n",
                        "logprobs": {"token_logprobs": [-0.25 - 0.01 * k for k in range(ntok)]}})
    return {"choices": choices}


def pooling(body):
    """One [P(bad), P(good)] row per step tag; a row depends on the text up to its tag only."""
    text, rows, at = body["input"], [], 0
    while (at := text.find(TAG, at)) >= 0:
        at += len(TAG)
        p = (_hash(text[:at]) % 1000) / 999
        rows.append([1 - p, p])
    return {"data": [{"data": rows}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms ACK waits

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/v1/completions":
            reply, code = completions(body), 200
        elif self.path == "/pooling":
            reply, code = pooling(body), 200
        else:
            reply, code = {"error": {"message": f"no route {self.path}"}}, 404
        data = json.dumps(reply).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 drops SYNs of a 32-request burst: 1 s stalls


@pytest.fixture(scope="module")
def url():
    server = Server(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_plugins_search_and_report(url):
    gen = qstar.HttpGenerator(url, max_step_tokens=8, max_batch=5, request_timeout_s=20.0)
    prm = qstar.HttpVerifier([url], step_tag=TAG)
    assert gen.name == f"http:{url}" and gen.max_batch_size == 5 and gen.params["base_urls"] == [url]
    assert gen.params["max_step_tokens"] == 8 and prm.params["step_tag"] == TAG
    assert prm.has_step_scores and prm.has_outcome_scores
    rs = qstar.search(PUZZLES, algo="beam", generator=gen, verifier=prm, seed=3, num_beams=4, width=2, max_depth=3)
    assert all(r.candidates for r in rs)
    assert all(r.stats.generated_tokens > 0 and r.stats.verifier_calls >= 1 for r in rs)
    assert gen.stats()["requests"] >= len(PUZZLES) and prm.stats()["calls"] >= 1 and gen.stats()["failures"] == 0


def test_http_parameter_errors():
    with pytest.raises(qstar.InvalidArgument, match="temprature"):
        qstar.HttpGenerator("http://127.0.0.1:9", temprature=0.5)
    with pytest.raises(qstar.InvalidArgument, match="api"):
        qstar.HttpVerifier("http://127.0.0.1:9", api="rewards")
    with pytest.raises(qstar.InvalidArgument, match="base_urls"):
        qstar.HttpGenerator(["http://127.0.0.1:9", 3])


@pytest.mark.parametrize("algo", sorted(KNOB))
def test_wrapped_http_plugins_give_the_same_results(url, algo):
    gen = lambda: qstar.HttpGenerator(url, max_step_tokens=8, max_batch=5)  # noqa: E731
    prm = lambda: qstar.HttpVerifier(url, step_tag=TAG)  # noqa: E731
    same_results(gen, prm, algo, max_depth=3, **{KNOB[algo]: 8})


def test_wrapped_http_outcome_scores_in_best_of_n(url):
    gen = lambda: qstar.HttpGenerator(url, max_step_tokens=8)  # noqa: E731
    prm = lambda: qstar.HttpVerifier(url, step_tag=TAG, outcome_aggregation="min")  # noqa: E731
    same_results(gen, prm, "best-of-n", max_depth=3, n=8, scoring="orm")
