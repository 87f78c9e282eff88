"""Intent detection (systems/intents.py): the prompt, the answer parser, the offline detector,
and the LLM detector over real HTTP against a local fake OpenAI-compatible endpoint."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from benchmark.records import PROPERTIES, Sticker, TrainingData, TrainQuery
from systems.intents import (
    INTENT_NAMES, IntentTable, LLMIntentDetector, LLMSettings, OfflineIntentDetector, build_prompt,
    complete, example_queries, intent_weights, parse_intents,
)

PAPER_ANSWER = (
    "Let's think step by step. \"Doraemon cute\" is most likely to be an IP intent in OCR, IP, "
    "entity, style, meaning, because Doraemon is a well-known anime character. Excluding the IP "
    "intent, ... \"Doraemon cute\" is least likely to be an OCR intent, because it is not an image "
    "or video with text content. Therefore, the answer is: IP > style > entity > meaning > OCR."
)
IP_FIRST = ("ip", "style", "entity", "meaning", "ocr")
OCR_FIRST = ("ocr", "meaning", "entity", "style", "ip")
IP_NAMES = ["doraemon", "pikachu", "snoopy", "garfield", "totoro", "kirby", "minion", "pusheen"]
WORDS = ["good", "morning", "night", "thanks", "happy", "birthday", "sorry", "love", "cat", "dog",
         "cute", "funny", "angry", "sleeping", "crying", "dancing"]


def fake_encode(texts):
    """Bag of hashed words in 256 dimensions: a stand-in for the frozen encoder."""
    out = np.zeros((len(texts), 256), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.lower().split():
            out[i, zlib.crc32(word.encode()) % 256] += 1.0
    return out


def _data(queries=(), stickers=()) -> TrainingData:
    return TrainingData(name="hand", fingerprint="x", stickers=tuple(stickers), users={},
                        queries=tuple(queries), qrels={})


def _synthetic(n: int, seed: int) -> list[TrainQuery]:
    """Queries that name a character IP are IP intents first, the others OCR first."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        words = list(rng.choice(WORDS, size=2, replace=False))
        with_ip = rng.random() < 0.5
        if with_ip:
            words.insert(int(rng.integers(3)), str(rng.choice(IP_NAMES)))
        out.append(TrainQuery(f"q{seed}-{i:04d}", None, " ".join(words), IP_FIRST if with_ip else OCR_FIRST))
    return out


CORPUS = (
    Sticker("s1", ocr="good morning", ip="Doraemon", entity="cat", style="cute", meaning="greeting"),
    Sticker("s2", ocr="thank you boss", ip="Pikachu", entity="mouse", style="pixel", meaning="thanks"),
)

# --- prompt and examples -------------------------------------------------------------------------


def test_build_prompt_is_appendix_b_with_examples_and_query():
    prompt = build_prompt("doraemon sleeping", {"ocr": ["good morning", "thank you"], "ip": ["a", "b", "c", "d"]})
    assert prompt.startswith("I am a user who is using the sticker search feature, and I have entered a "
                             "query. Please help me analyze the intent behind my query.")
    assert "There are five possible intents: OCR, IP, entity, style, and meaning." in prompt
    descriptions = [
        "OCR textual content refers to the text extracted from the sticker using Optical Character "
        "Recognition (OCR) technology.",
        "Character IP refers to Intellectual Property (IP) related to the characters depicted on the "
        "sticker, which could be a well-known character from a movie, TV show, comic book, video game, "
        "or any other form of media.",
        "Entity refers to the specific object, symbol, or concept that is primarily depicted in the sticker.",
        "Visual style refers to the specific artistic style that the sticker's design follows.",
        "Meaning refers to the intended message, sentiment, or symbolism that the sticker is designed to "
        "convey, which is typically provided by the source of the sticker.",
    ]
    positions = [prompt.index(d) for d in descriptions]
    assert positions == sorted(positions)
    assert f'{descriptions[0]}\n\nExamples: "good morning", "thank you"\n\n' in prompt
    assert f'{descriptions[1]}\n\nExamples: "a", "b", "c"\n\n' in prompt
    assert f"{descriptions[2]}\n\nExamples: none\n\n" in prompt
    assert "arrange the order of intent for the query: Doraemon cute.\n\nA: Let's think step by step." in prompt
    assert "Therefore, the answer is: IP > style > entity > meaning > OCR." in prompt
    assert prompt.endswith("Q: Based on the given explanation, arrange the order of intent for the query: "
                           "doraemon sleeping\n\nA: Let's think step by step.")
    assert INTENT_NAMES == {"ocr": "OCR", "ip": "IP", "entity": "entity", "style": "style", "meaning": "meaning"}


def test_example_queries_take_distinct_texts_by_top_intent_in_qid_order():
    queries = [
        TrainQuery("q03", None, "doraemon", IP_FIRST), TrainQuery("q01", None, "good morning", OCR_FIRST),
        TrainQuery("q02", None, "pikachu", IP_FIRST), TrainQuery("q04", None, "doraemon", IP_FIRST),
        TrainQuery("q05", None, "kirby", IP_FIRST), TrainQuery("q06", None, "snoopy", IP_FIRST),
        TrainQuery("q07", None, "cute", ()),
    ]
    assert example_queries(_data(queries)) == {
        "ocr": ["good morning"], "ip": ["pikachu", "doraemon", "kirby"], "entity": [], "style": [], "meaning": [],
    }
    assert example_queries(_data([TrainQuery("q1", None, "cute", ())])) == {p: [] for p in PROPERTIES}


# --- parsing, completion, weights ----------------------------------------------------------------


@pytest.mark.parametrize("answer", [
    PAPER_ANSWER,
    "THE ANSWER IS: ip > STYLE > Entity > Meaning > ocr",
    'the answer is "Character IP" > "Visual style" > entity > meaning > OCR textual content.',
    "So the answer is: **IP** > **style** > entity intent > meaning > OCR.",
    "Therefore, the answer is:\nIP -> style -> entity -> meaning -> OCR.\nI hope this helps.",
    "the answer is: IP > style > entity > meaning > OCR. This is because Doraemon is famous.",
    "At first the answer is: OCR > IP > entity > style > meaning. On reflection, "
    "the answer is: IP > style > entity > meaning > OCR.",
])
def test_parse_intents_reads_the_last_answer(answer):
    assert parse_intents(answer) == IP_FIRST


@pytest.mark.parametrize("answer", [
    "", "IP > style > entity > meaning > OCR", "the answer is: IP > banana",
    "the answer is: > > >", "the answer is:", "the answer is: unclear, sorry",
    "the answer is: IP > style. Earlier the answer is: nonsense",
])
def test_parse_intents_rejects_malformed_answers(answer):
    assert parse_intents(answer) is None


def test_parse_intents_keeps_partial_rankings_and_drops_repeats():
    assert parse_intents("The answer is: IP > style.") == ("ip", "style")
    assert parse_intents("the answer is: IP > ip > Character IP > style > IP") == ("ip", "style")


def test_complete_appends_missing_fallback_properties():
    assert complete(("ip", "style"), PROPERTIES) == ("ip", "style", "ocr", "entity", "meaning")
    assert complete(("meaning", "ocr"), ("ip", "meaning", "style")) == ("meaning", "ip", "style")
    assert complete((), ("style", "ip")) == ("style", "ip")
    assert complete(("ip", "ip", "entity"), ("entity", "ip")) == ("ip", "entity")


def test_intent_weights_follow_eq_15():
    weights = intent_weights(IP_FIRST)
    assert list(weights) == list(IP_FIRST)
    assert weights == pytest.approx({"ip": 1.0, "style": 1 / math.log2(3), "entity": 0.5,
                                     "meaning": 1 / math.log2(5), "ocr": 1 / math.log2(6)})
    assert intent_weights(("style",)) == {"style": 1.0}


# --- offline detector ----------------------------------------------------------------------------


def test_offline_detector_learns_a_synthetic_rule():
    train, test = _synthetic(300, seed=1), _synthetic(100, seed=2)
    detector = OfflineIntentDetector(fake_encode)
    notes = detector.fit(_data(train, CORPUS), PROPERTIES)
    assert notes["intent_annotated_queries"] == 300
    assert notes["intent_heldout_queries"] > 0
    assert notes["intent_heldout_top1"] >= 0.9
    assert notes["intent_heldout_kendall_tau"] >= 0.8
    predicted = detector.rank([q.text for q in test])
    accuracy = np.mean([p[0] == q.intents[0] for p, q in zip(predicted, test)])
    assert accuracy >= 0.9
    assert all(sorted(p) == sorted(PROPERTIES) for p in predicted)


def test_offline_detector_state_round_trips_through_json():
    detector = OfflineIntentDetector(fake_encode, ridge=0.5)
    detector.fit(_data(_synthetic(60, seed=3), CORPUS), ("ip", "ocr", "style"))
    texts = [q.text for q in _synthetic(30, seed=4)] + ["doraemon cute", "unseen words"]
    restored = OfflineIntentDetector.from_state(json.loads(json.dumps(detector.state())), fake_encode)
    assert restored.rank(texts) == detector.rank(texts)
    assert restored.ridge == 0.5 and restored.properties == ("ip", "ocr", "style")


def test_offline_detector_without_annotations_uses_lexical_evidence():
    detector = OfflineIntentDetector(fake_encode)
    notes = detector.fit(_data([TrainQuery("q1", None, "hello", ())], CORPUS), PROPERTIES)
    assert notes["intent_annotated_queries"] == 0 and notes["intent_heldout_top1"] is None
    ranks = detector.rank(["Doraemon!", "pixel art", "zzz", "good morning cat"])
    assert ranks[0][0] == "ip" and ranks[1][0] == "style"
    assert ranks[2] == PROPERTIES
    assert ranks[3] == ("ocr", "entity", "ip", "style", "meaning")
    assert detector.rank([]) == []


def test_lexical_evidence_is_the_share_of_distinct_values_normalized():
    stickers = [Sticker("s1", ocr="hello", meaning="hello friend"), Sticker("s2", ocr="good morning", meaning="thanks"),
                Sticker("s3", ocr="hello", meaning="bye", ip="Hello Kitty")]
    detector = OfflineIntentDetector(fake_encode)
    detector.fit(_data(stickers=stickers), PROPERTIES)
    # shares: ocr 1/2 (of 2 distinct values), ip 1/1, meaning 1/3; normalized by their sum 11/6
    assert detector.state()["lexicon"]["hello"] == pytest.approx([3 / 11, 6 / 11, 0, 0, 2 / 11])


def test_offline_detector_ranks_only_the_given_properties():
    properties = ("ip", "style", "meaning")
    for queries in ([], _synthetic(40, seed=5)):
        detector = OfflineIntentDetector(fake_encode)
        detector.fit(_data(queries, CORPUS), properties)
        for ranking in detector.rank(["good morning", "doraemon cute", "pixel"]):
            assert sorted(ranking) == sorted(properties)


# --- LLM detector over HTTP ----------------------------------------------------------------------


def _completion(model: str, content: str) -> dict:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


class FakeLLM:
    """An OpenAI-compatible chat endpoint on 127.0.0.1; ``reply(i)`` gives the i-th request's
    (HTTP status, answer text, delay in seconds)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.reply = lambda i: (200, "Therefore, the answer is: style > meaning > entity > OCR > IP.", 0.0)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, **body})
                status, content, delay = fake.reply(len(fake.requests) - 1)
                time.sleep(delay)
                reply = _completion(body["model"], content) if status == 200 else {"error": {"message": "boom"}}
                payload = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (timeout)
                    pass

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def llm():
    fake = FakeLLM()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("STICKERBENCH_LLM_API_KEY", "test-key")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("STICKERBENCH_LLM_BASE_URL", raising=False)


@pytest.fixture(scope="module")
def offline():
    """Lexical-only: 'doraemon ...' -> IP first, anything unseen -> PROPERTIES order."""
    detector = OfflineIntentDetector(fake_encode)
    detector.fit(_data(stickers=CORPUS), PROPERTIES)
    return detector


EXAMPLES = {"ocr": ["good morning"], "ip": ["doraemon"]}
LLM_ANSWER = ("style", "meaning", "entity", "ocr", "ip")


def _detector(tmp_path, offline, base_url, **settings) -> LLMIntentDetector:
    settings = LLMSettings(model="fake-chat", base_url=base_url, **settings)
    return LLMIntentDetector(settings, EXAMPLES, IntentTable(tmp_path / "intents.json"), offline, PROPERTIES)


def test_llm_answer_is_parsed_and_the_prompt_is_appendix_b(tmp_path, offline, llm):
    detector = _detector(tmp_path, offline, llm.base_url)
    assert detector.rank(["doraemon sleeping", "zzz", "doraemon sleeping"]) == [LLM_ANSWER] * 3
    assert len(llm.requests) == 2
    request = llm.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["model"] == "fake-chat"
    assert request["temperature"] == 0
    assert request["messages"] == [{"role": "user", "content": build_prompt("doraemon sleeping", EXAMPLES)}]
    assert request["messages"][0]["content"].endswith("for the query: doraemon sleeping\n\nA: Let's think step by step.")
    assert detector.stats == {"table_hits": 0, "llm_answers": 2, "fallback_error": 0, "fallback_garbage": 0}


def test_partial_answers_are_completed_with_the_offline_ranking(tmp_path, offline, llm):
    llm.reply = lambda i: (200, "the answer is: meaning > style", 0.0)
    assert _detector(tmp_path, offline, llm.base_url).rank(["doraemon sleeping"]) == [
        ("meaning", "style", "ip", "ocr", "entity")]


def test_garbage_answer_falls_back_with_one_warning(tmp_path, offline, llm):
    llm.reply = lambda i: (200, "I like stickers. The answer is: IP > banana.", 0.0)
    detector = _detector(tmp_path, offline, llm.base_url)
    with pytest.warns(UserWarning, match="unparseable answer") as record:
        ranks = detector.rank(["doraemon sleeping", "zzz"])
    assert ranks == offline.rank(["doraemon sleeping", "zzz"])
    assert len(record) == 1 and llm.base_url in str(record[0].message)
    assert detector.stats["fallback_garbage"] == 2 and len(llm.requests) == 2
    assert IntentTable(tmp_path / "intents.json").get("zzz") is None


def test_slow_answer_times_out_and_falls_back(tmp_path, offline, llm):
    llm.reply = lambda i: (200, "the answer is: IP", 1.5)
    detector = _detector(tmp_path, offline, llm.base_url, timeout=0.5)
    start = time.monotonic()
    with pytest.warns(UserWarning, match="timeout"):
        assert detector.rank(["doraemon sleeping"]) == offline.rank(["doraemon sleeping"])
    assert time.monotonic() - start < 1.4
    assert detector.stats["fallback_error"] == 1


def test_http_errors_stop_the_calls_after_max_failures(tmp_path, offline, llm):
    llm.reply = lambda i: (500, "", 0.0)
    detector = _detector(tmp_path, offline, llm.base_url, max_failures=2)
    texts = [f"query {i}" for i in range(5)]
    with pytest.warns(UserWarning) as record:
        assert detector.rank(texts) == offline.rank(texts)
    messages = [str(w.message) for w in record]
    assert len(messages) == 2 and "HTTP 500" in messages[0] and "2 consecutive failures" in messages[1]
    assert all(llm.base_url in m and "\n" not in m for m in messages)
    assert len(llm.requests) == 2
    assert detector.stats == {"table_hits": 0, "llm_answers": 0, "fallback_error": 5, "fallback_garbage": 0}


def test_a_success_resets_the_failure_count(tmp_path, offline, llm):
    llm.reply = lambda i: (500, "", 0.0) if i in (0, 1, 3, 4) else (200, PAPER_ANSWER, 0.0)
    detector = _detector(tmp_path, offline, llm.base_url, max_failures=3)
    with pytest.warns(UserWarning, match="HTTP 500"):
        ranks = detector.rank([f"query {i}" for i in range(6)])
    assert ranks[2] == ranks[5] == IP_FIRST and len(llm.requests) == 6


def test_endpoint_down_falls_back(tmp_path, offline):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    detector = _detector(tmp_path, offline, f"http://127.0.0.1:{port}/v1", timeout=2.0)
    texts = ["doraemon sleeping", "zzz", "good morning", "cat"]
    with pytest.warns(UserWarning) as record:
        assert detector.rank(texts) == offline.rank(texts)
    assert [str(w.message).split(": ")[1].split(" (")[0] for w in record] == ["connection error", "stopped"]
    assert f"127.0.0.1:{port}" in str(record[0].message) and "3 consecutive failures" in str(record[1].message)
    assert detector.stats["fallback_error"] == 4


def test_the_table_caches_answers_across_calls_and_detectors(tmp_path, offline, llm):
    first = _detector(tmp_path, offline, llm.base_url)
    assert first.rank(["doraemon sleeping"]) == [LLM_ANSWER]
    assert first.rank(["doraemon sleeping"]) == [LLM_ANSWER]
    assert len(llm.requests) == 1 and first.stats["table_hits"] == 1
    second = _detector(tmp_path, offline, llm.base_url)
    assert second.rank(["doraemon sleeping"]) == [LLM_ANSWER]
    assert len(llm.requests) == 1
    assert second.stats == {"table_hits": 1, "llm_answers": 0, "fallback_error": 0, "fallback_garbage": 0}
    assert json.loads((tmp_path / "intents.json").read_text()) == {"doraemon sleeping": list(LLM_ANSWER)}


def test_failures_are_not_cached(tmp_path, offline, llm):
    llm.reply = lambda i: (500, "", 0.0) if i == 0 else (200, PAPER_ANSWER, 0.0)
    with pytest.warns(UserWarning, match="HTTP 500"):
        _detector(tmp_path, offline, llm.base_url).rank(["doraemon sleeping"])
    assert _detector(tmp_path, offline, llm.base_url).rank(["doraemon sleeping"]) == [IP_FIRST]
    assert len(llm.requests) == 2


def test_missing_api_key_falls_back_without_requests(tmp_path, offline, llm, monkeypatch):
    monkeypatch.delenv("STICKERBENCH_LLM_API_KEY")
    detector = _detector(tmp_path, offline, llm.base_url)
    with pytest.warns(UserWarning, match="no API key") as record:
        assert detector.rank(["doraemon sleeping", "zzz"]) == offline.rank(["doraemon sleeping", "zzz"])
    assert len(record) == 1 and not llm.requests
    assert detector.stats["fallback_error"] == 2
    monkeypatch.setenv("OPENAI_API_KEY", "other-key")
    assert _detector(tmp_path, offline, llm.base_url).rank(["zzz"]) == [LLM_ANSWER]


def test_endpoint_defaults_come_from_the_environment(monkeypatch):
    assert LLMSettings().endpoint() == "https://api.deepseek.com"
    monkeypatch.setenv("STICKERBENCH_LLM_BASE_URL", "http://localhost:8000/v1")
    assert LLMSettings().endpoint() == "http://localhost:8000/v1"
    assert LLMSettings(base_url="http://other/v1").endpoint() == "http://other/v1"
