# Type stub of the qstar package (the _qstar extension's classes re-exported by __init__.py).
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

from . import game24 as game24
from . import math as math
from . import testing as testing
from .viz import Viz as Viz
from .viz import viz as viz

__version__: str
has_hf: bool
has_http: bool
has_torch: bool
ALGORITHMS: tuple[str, ...]
TASKS: tuple[str, ...]
DEFAULT_TASK: str

class Error(Exception): ...
class InvalidArgument(Error, ValueError): ...
class ParseError(Error, ValueError): ...
class IoError(Error, OSError): ...
class PluginError(Error, ValueError): ...

class Problem:
    id: str
    text: str
    gold: Optional[str]
    def __init__(self, text: str, id: Optional[str] = None, gold: Optional[str] = None) -> None: ...

class Step:
    text: str
    tokens: list[int]
    logprob: float
    num_tokens: int
    finish: str  # "none" | "step" | "answer" | "eos" | "length"
    token_logprobs: list[float]  # per token, temperature-1 model distribution; [] when not given
    token_entropies: list[float]  # per token, nats; [] when not given
    def __init__(self, text: str, tokens: Sequence[int] = ..., logprob: float = 0.0,
                 num_tokens: Optional[int] = None, finish: str = "step",
                 token_logprobs: Sequence[float] = ..., token_entropies: Sequence[float] = ...) -> None: ...

class ExpandRequest:
    problem_index: int
    problem: Problem
    prompt: str
    prefix: list[str]
    prefix_tokens: list[list[int]]
    depth: int
    num_candidates: int
    seed: int
    max_new_tokens: int
    greedy: bool
    def context(self, delimiter: str = "\n") -> str: ...

class StepScoreRequest:
    problem_index: int
    problem: Problem
    prompt: str
    steps: list[str]
    step_tokens: list[list[int]]
    first_new: int
    new_steps: list[str]
    def context(self, delimiter: str = "\n") -> str: ...

class OutcomeRequest:
    problem_index: int
    problem: Problem
    prompt: str
    steps: list[str]
    step_tokens: list[list[int]]
    def context(self, delimiter: str = "\n") -> str: ...

class Stats:
    generated_tokens: int
    verifier_tokens: int
    generator_calls: int
    verifier_calls: int
    generator_requests: int
    generated_steps: int
    verified_steps: int
    empty_proposals: int
    pruned_nodes: int
    nodes: int
    iterations: int
    samples: int
    generator_seconds: float
    verifier_seconds: float
    overhead_seconds: float
    wall_seconds: float
    generator_batches: dict[str, int]
    verifier_batches: dict[str, int]
    def to_dict(self) -> dict[str, Any]: ...

class Candidate:
    node: int
    answer: Optional[str]
    canonical: str
    score: float
    steps: list[str]
    def to_dict(self) -> dict[str, Any]: ...

class Tree:
    def __len__(self) -> int: ...
    def node(self, id: int) -> dict[str, Any]: ...
    def children(self, id: int) -> list[int]: ...
    def text(self, id: int) -> str: ...
    def trajectory(self, id: int) -> list[str]: ...
    def nodes(self) -> list[dict[str, Any]]: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self) -> str: ...

class Result:
    problem: Problem
    answer: Optional[str]
    correct: Optional[bool]
    chosen: int
    candidates: list[Candidate]
    stats: Stats
    stop_reason: str
    steps: list[str]
    score: Optional[float]
    curve: list[dict[str, Any]]
    tree: Optional[Tree]
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self) -> str: ...
    def trace_line(self) -> str: ...

class TraceRecord:
    problem: Problem
    answer: Optional[str]
    correct: Optional[bool]
    stop_reason: str
    node_correct: list[Optional[bool]]
    tree: Tree
    def to_json(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...

class BuiltinGenerator:
    name: str
    max_batch_size: int
    def expand(self, batch: Sequence[ExpandRequest]) -> list[list[Step]]: ...

class BuiltinVerifier:
    name: str
    has_step_scores: bool
    has_outcome_scores: bool
    max_batch_size: int
    def score_steps(self, batch: Sequence[StepScoreRequest]) -> list[list[float]]: ...
    def score(self, batch: Sequence[StepScoreRequest]) -> list[list[float]]: ...
    def score_outcomes(self, batch: Sequence[OutcomeRequest]) -> list[float]: ...

class Tokenizer:
    vocab_size: int
    bos_id: Optional[int]
    eos_id: Optional[int]
    @staticmethod
    def from_file(path: str) -> Tokenizer: ...
    @staticmethod
    def from_json(text: str) -> Tokenizer: ...
    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]: ...
    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = False) -> list[list[int]]: ...
    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str: ...
    def token_to_id(self, token: str) -> Optional[int]: ...
    def id_to_token(self, id: int) -> str: ...

class LMGenerator(BuiltinGenerator):
    """Keyword params: device, dtype, step_delimiter, answer_marker, max_step_tokens, temperature,
    top_p, top_k, kv_cache_bytes, use_cache, max_batch, prompt_template, add_special_tokens,
    record_forwards, token_stats (qstar::lm::LMGeneratorParams)."""
    params: dict[str, Any]
    def __init__(self, path: str, **params: Any) -> None: ...
    def stats(self) -> dict[str, Any]: ...
    def reset_stats(self) -> None: ...
    def clear_cache(self) -> None: ...
    def tokenize(self, text: str) -> list[int]: ...
    @property
    def tokenizer(self) -> Tokenizer: ...

class PRM(BuiltinVerifier):
    """kind: token-logit | chat-logit | token-class | process-reward | value-head |
    reward-model | seq-class | torchscript | auto. Keyword params: device, dtype, step_tag, good_token, bad_token, step_separator,
    prompt_template, chat_template, chat_system, outcome_aggregation, kv_cache_bytes,
    share_min_tokens, max_batch, tokenizer
    (qstar::lm::PrmParams)."""
    kind: str
    params: dict[str, Any]
    def __init__(self, path: str, kind: str = "auto", **params: Any) -> None: ...
    def stats(self) -> dict[str, Any]: ...
    def reset_stats(self) -> None: ...
    def clear_cache(self) -> None: ...

class HttpGenerator(BuiltinGenerator):
    """urls: a base URL, "url1,url2" or a list. Keyword params: path, step_delimiter,
    answer_marker, max_step_tokens, temperature, top_p, top_k, logprobs, prompt_template,
    max_batch (qstar::http::HttpGeneratorParams) and balance, max_in_flight, connect_timeout_s,
    request_timeout_s, max_retries, backoff_initial_s, backoff_max_s, url_cooldown_s,
    api_key_env, model, verify_tls (its ClientParams)."""
    params: dict[str, Any]
    def __init__(self, urls: Union[str, Sequence[str]], **params: Any) -> None: ...
    def stats(self) -> dict[str, Any]: ...

class HttpVerifier(BuiltinVerifier):
    """urls: as HttpGenerator's. Keyword params: api, path, step_tag, step_separator,
    prompt_template, score_index, outcome_aggregation, max_batch
    (qstar::http::HttpVerifierParams) and the ClientParams fields."""
    params: dict[str, Any]
    def __init__(self, urls: Union[str, Sequence[str]], **params: Any) -> None: ...
    def stats(self) -> dict[str, Any]: ...

ProblemsLike = Union[str, Problem, Iterable[Union[str, Problem]]]

def search(problems: ProblemsLike, algo: str = "beam", generator: Any = None, verifier: Any = None,
           seed: int = 0, task: Any = None, *, budget: Optional[Mapping[str, Union[int, float]]] = None,
           custom_aggregation: Optional[Callable[[list[float]], float]] = None,
           **params: Union[bool, int, float, str]) -> list[Result]: ...
def default_params(algo: str) -> dict[str, Any]: ...
def check_params(algo: str, **params: Any) -> dict[str, Any]: ...
def set_threads(n: int) -> dict[str, Any]: ...
def write_trace(path: str, results: Sequence[Result], append: bool = False) -> None: ...
def read_trace(path: str) -> list[TraceRecord]: ...
def parse_trace_line(line: str) -> TraceRecord: ...
