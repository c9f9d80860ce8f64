// Process reward models (PRMs) and outcome reward models on LibTorch, behind one class,
// PrmVerifier, which satisfies both qstar::StepVerifier and qstar::OutcomeVerifier.
//
// No LibTorch here: the class is a PImpl (src/torch/prm.cpp).
//
// Kinds (PrmParams::kind):
//  * "token-logit": a causal LM (LlamaForCausalLM / Qwen2ForCausalLM), Math-Shepherd style.
//    The score of step i is P(good) / (P(good) + P(bad)) under the LM's next-token
//    distribution at the last token of step i's tag, i.e. the softmax over the two logits
//    {good_token, bad_token} (= sigmoid(logit_good - logit_bad)).
//  * "token-class": a LlamaForTokenClassification / Qwen2ForTokenClassification model (the
//    head TRL's PRMTrainer produces), read at the last token of each step's tag: one label
//    -> sigmoid(logit); two labels -> softmax, probability of class 1. Other label counts
//    are rejected at load.
//  * "chat-logit": a causal LM judging each step in a chat, RLHFlow style
//    (RLHFlow/Llama3.1-8B-PRM-Deepseek-Data): every step is a user turn (the first is the
//    problem + " " + the step), the judgement an assistant turn good_token ("+"); the score
//    is token-logit's, read at the last token before the judgement. The prefix, the step
//    suffix (e.g. "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n") and the
//    separator (good_token + the text up to the next step) come from rendering the chat
//    template (chat_template, "auto" when empty) with sentinel messages and splitting it,
//    so any template works; see "The scored sequence" for how pieces are tokenized.
//  * "process-reward": Qwen2ForProcessRewardModel (Qwen2.5-Math-PRM): score.0 Linear(h,h),
//    ReLU, score.2 Linear(h,2); softmax, probability of class 1, at each step's tag
//    (default "<extra_0>", one token of its tokenizer). Its layout is the chat's generation
//    prompt of [system, user: the problem] (chat_template "auto" when empty; chat_system
//    default "Please reason step by step, and put your final answer within \boxed{}."),
//    then each step followed by the tag (no separator).
//  * "value-head": Qwen2ForPrmModel (Skywork-o1-Open-PRM): v_head.summary Linear(h,1) on the
//    final hidden state, sigmoid, at each step's tag (default "\n"). Its layout (when
//    prompt_template is left at "{prompt}") is SkyworkAI's: "{bos}{problem}\n", then each
//    step followed by "\n".
//  * "reward-model" (outcome): Qwen2ForRewardModel (Qwen2.5-Math-RM): the process-reward head
//    with one output, sigmoid, read at the last token of the whole conversation [system,
//    user: the problem, assistant: the steps joined by step_separator (default "\n\n")]
//    rendered by the chat template (which ends it with "<|im_end|>\n").
//  * "seq-class" (outcome): {Llama,Qwen2,Qwen3,Mistral}ForSequenceClassification reward
//    models: `score` Linear(h, num_labels, no bias), read at the last token (the last
//    non-pad token) of the same conversation (no system message unless chat_system is set);
//    one label -> sigmoid, two -> softmax, class 1.
//    The outcome kinds score whole responses only: score_steps throws InvalidArgument.
//    Their raw reward (before the sigmoid) is what `qstar lm logits` prints.
//  * "torchscript": a user's TorchScript module (torch::jit::load), see "TorchScript calling
//    convention" below.
//  * "auto" (default): a regular file -> torchscript; a directory with config.json -> the
//    kind its architecture names (*ForTokenClassification: token-class,
//    Qwen2ForProcessRewardModel: process-reward, Qwen2ForPrmModel: value-head,
//    Qwen2ForRewardModel: reward-model, *ForSequenceClassification: seq-class, *ForCausalLM:
//    token-logit; chat-logit is never inferred: a causal LM does not say how it was
//    prompted); a directory without config.json but with model.pt -> torchscript. An
//    explicit kind must match the architecture (InvalidArgument naming PrmParams.kind).
//
// The scored sequence (all kinds). For a request with prompt P and steps s_0 .. s_{n-1}:
//
//   tokens = encode(prompt_template with "{prompt}" replaced by P, add_special_tokens=true)
//   for i in 0 .. n-1:
//     if i > 0: tokens += encode(step_separator)           (nothing when it is empty)
//     tokens += encode(text of s_i)                         (add_special_tokens=false)
//     tokens += [id of step_tag]
//     step_end[i] = tokens.size() - 1                       (the tag's position)
//
// chat-logit differs in two places: the tag is several tokens (the step is read at the last)
// and the text between the problem and the first step (" ") is tokenized together with the
// first step's text, as it is in the rendered conversation.
// The prompt_template placeholders: {prompt} (the request's prompt), {problem} (the
// problem's text), {bos} (tokenizer_config.json's bos_token, else config.json's
// bos_token_id's token, else "").
//
// Every piece is tokenized on its own (the prompt, each separator, each step's text, the
// tag), so the sequence of a node is exactly a prefix of its children's sequences and
// siblings share their parent's tokens, and so its cached KV. (This can differ from
// tokenizing the joined text in one go where a BPE merge would cross a piece boundary;
// that is the price of exact prefix sharing, and it is how TRL's PRMTrainer tokenizes steps
// too.) The steps' own token ids (Step::tokens, from the generator's tokenizer) are not
// used: the text is re-tokenized with the PRM's tokenizer. step_tag, good_token and
// bad_token must each be exactly one token of the tokenizer (an InvalidArgument naming the
// field otherwise), and good and bad must differ. The prompt's add_special_tokens applies
// the tokenizer's template (e.g. Llama-3's BOS); Qwen2 adds nothing.
// With a chat template (chat_template set), P is not the request's prompt but the PRM's own
// layout of the problem: the template rendered with [{system: chat_system} if set, {user: the
// problem's text}] and the generation prompt, as transformers' apply_chat_template does; that
// text is tokenized without added special tokens (the template writes them), e.g.
// Qwen2.5-Math-PRM's "<|im_start|>system ... <|im_start|>assistant\n" before the steps.
// Math-Shepherd's own format ("{question} step ки\nstep ки") is prompt_template
// "{prompt} ", step_tag " ки" (or "ки", whichever is one token of its tokenizer) and
// step_separator "\n".
//
// Incremental scoring (token-logit, token-class). The verifier keeps a shared-prefix KV
// cache (a radix tree over token sequences, LRU-evicted under kv_cache_bytes). For each
// request it looks up the longest cached prefix of the request's sequence, runs only the
// uncached tokens (one batched, ragged forward for the whole call) and stores their KV. A
// request with first_new = k whose parent was scored before finds the prefix through step
// k-1's tag cached, so a new step costs only its own tokens (separator + text + tag). A
// step whose tag position is already cached (e.g. score_outcomes over a trajectory whose
// steps were all scored, or a sibling with identical text) is re-read with a one-token
// "probe" over the cached KV instead of recomputing the sequence. Requests of one call that
// share an uncached prefix (e.g. the first steps of a fresh problem share the prompt)
// compute it once when that saves at least share_min_tokens tokens: the shared prefixes are
// prefilled in a preliminary forward per level of sharing (so a call makes one forward, or
// a few when requests share long uncached prefixes). An evicted prefix is
// simply recomputed: scores never depend on the cache state, batch composition or
// max_batch (up to float rounding, ~1e-6).
//
// TorchScript calling convention (kind "torchscript"). The module's forward must be
//
//   forward(input_ids: Tensor, attention_mask: Tensor, step_ends: Tensor) -> Tensor
//
//   input_ids      int64 [B, T]: the scored sequences (layout above), right-padded with 0
//   attention_mask int64 [B, T]: 1 on real tokens, 0 on padding
//   step_ends      int64 [B, S]: S = the most steps of any sequence of the batch; entry
//                  [b, i] is the position in input_ids[b] of the last token of step i's tag
//                  (step_end[i] above), -1 for i >= the number of steps of sequence b
//   returns        floating [B, S]: the score in [0, 1] of every step (entries at -1 step
//                  ends are ignored, any value)
//
// All tensors are on the configured device; the module is moved there at load (its own
// dtype is kept: PrmParams::dtype does not apply), switched to eval() and run under
// c10::InferenceMode. The module is not incremental: every call passes the full sequences
// (all steps, also when first_new > 0) and there is no KV cache. Scores for the steps a
// request asks for (first_new ..) are taken from the output. A module that throws, returns
// something other than a floating tensor of shape [B, S], or returns a non-finite score or
// one outside [0, 1] at a real step is reported as a qstar::PluginError naming the file.
// (tests/torch/make_torchscript_prm.py scripts an example module.)
//
// ORM use: score_outcomes() scores every step of each trajectory (reusing the same cache)
// and aggregates the step scores with PrmParams::outcome_aggregation (default last; see
// qstar/core/aggregate.hpp; an empty trajectory aggregates to that rule's empty value).
//
// Threading: every call locks the verifier (one call at a time); tensors are touched only
// under c10::InferenceMode on the calling thread. Copies share the model, the cache and the
// statistics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qstar/core/aggregate.hpp"
#include "qstar/core/concepts.hpp"
#include "qstar/core/tree.hpp"

namespace qstar::lm {

/// How to load and run a PRM. Defaults as documented; validate() is called by load().
struct PrmParams {
  /// "token-logit" | "chat-logit" | "token-class" | "process-reward" | "value-head" |
  /// "reward-model" | "seq-class" | "torchscript" | "auto" (see the header comment).
  std::string kind = "auto";
  /// "cpu", "cuda" or "cuda:N".
  std::string device = "cpu";
  /// "float32" | "bfloat16" | "float16" | "int8" (CPU only): the weights' dtype; on CUDA
  /// also the compute dtype, on CPU the storage dtype of the weight matrices while every
  /// layer computes in float32 (lm::LoadOptions::dtype / int8; a score head stays
  /// float32). Ignored by torchscript modules.
  std::string dtype = "float32";
  /// The tag appended after every step (one token of the tokenizer). Empty = the kind's
  /// default: " ки" for token-logit (Math-Shepherd), "<extra_0>" for process-reward, "\n"
  /// for token-class, value-head and torchscript (TRL's PRMTrainer default step separator).
  /// Not used by chat-logit (its tag comes from the chat template) or the outcome kinds.
  std::string step_tag;
  /// token-logit / chat-logit: the tokens whose next-token probabilities define the score
  /// (one token each, different from each other). chat-logit's judgement turn is good_token.
  std::string good_token = "+", bad_token = "-";
  /// Text inserted between a step's tag and the next step's text (tokenized on its own;
  /// empty = nothing). Math-Shepherd's format uses "\n". The outcome kinds join the steps'
  /// texts with it into the response (empty = "\n\n").
  std::string step_separator;
  /// The text the prompt is rendered into; must contain "{prompt}" (the request's prompt,
  /// i.e. Task::format of the problem) or "{problem}" (the problem's text); "{bos}" is the
  /// BOS token's text. Every occurrence is replaced. value-head: the default "{prompt}"
  /// means SkyworkAI's "{bos}{problem}\n".
  std::string prompt_template = "{prompt}";
  /// The PRM's own chat layout of the problem: a model folder or tokenizer_config.json (its
  /// chat_template), or a Jinja file; "auto" = the PRM folder's tokenizer_config.json; ""
  /// (default) = none, the request's prompt is used, except for the chat kinds
  /// (chat-logit, process-reward, reward-model, seq-class), for which "" means "auto" and
  /// "none" means no chat (the outcome kinds then score prompt_template + the response).
  std::string chat_template;
  /// The system message of the chat layout ("" = none; process-reward and reward-model:
  /// Qwen2.5-Math's "Please reason step by step, ..."). Needs chat_template unless the kind
  /// is a chat kind.
  std::string chat_system;
  /// How score_outcomes aggregates a trajectory's step scores.
  Aggregation outcome_aggregation = Aggregation::Last;
  /// The callable for Aggregation::Custom (required then).
  CustomAggregation custom_aggregation;
  /// Byte cap of the shared-prefix KV cache (token-logit, token-class). 0 disables the
  /// cache: every call recomputes every sequence in full. Negative is invalid.
  std::int64_t kv_cache_bytes = std::int64_t{256} << 20;
  /// Requests of one call that share a prefix the cache does not hold yet (e.g. the first
  /// steps of a fresh problem all share the prompt) get it prefilled once, in a preliminary
  /// forward per level of sharing, when that saves at least this many tokens at that level;
  /// otherwise each request computes it (one forward for the call). 0 = share whenever
  /// anything is saved; negative = never.
  std::int64_t share_min_tokens = 32;
  /// The largest batch one forward takes (max_batch_size(); calls with more requests are
  /// split internally too). 0 = unlimited.
  std::size_t max_batch = 0;
  /// A tokenizer.json file, or a directory holding one. Empty = tokenizer.json in the model
  /// directory (for a TorchScript file: beside the file).
  std::string tokenizer;

  /// InvalidArgument naming the field ("PrmParams.kind: ...") for an unknown kind, an
  /// empty device, an unknown dtype, empty or equal good/bad tokens, a prompt_template
  /// without "{prompt}", a negative kv_cache_bytes, or Custom without a callable.
  void validate() const;
};

/// Counters since load (or the last reset_stats()).
struct PrmStats {
  std::int64_t calls = 0;            ///< score_steps + score_outcomes calls
  std::int64_t requests = 0;         ///< requests over those calls
  std::int64_t steps_scored = 0;     ///< step scores returned (outcomes: every step)
  std::int64_t forwards = 0;         ///< batched model forwards (prefill rounds included)
  std::int64_t tokens_computed = 0;  ///< tokens run through the model (probes included)
  std::int64_t tokens_reused = 0;    ///< tokens of the scored sequences found in the cache
  std::int64_t probe_tokens = 0;     ///< of tokens_computed: one-token re-reads of cached tags
  std::int64_t prefill_tokens = 0;   ///< of tokens_computed: shared prefixes prefilled once
  std::int64_t cache_bytes = 0;      ///< KV cache bytes now
  std::int64_t cache_peak_bytes = 0; ///< largest KV cache size seen since load (not reset)
  std::int64_t cache_tokens = 0;     ///< distinct tokens stored in the cache now
  std::int64_t cache_evicted_tokens = 0;  ///< tokens dropped by LRU eviction
};

/// The tokens of one scored sequence and the positions of its steps' tags.
struct PrmSequence {
  std::vector<std::int32_t> tokens;
  std::vector<std::int64_t> step_ends;  ///< step_ends[i]: the position of step i's tag
};

class PrmVerifier {
 public:
  /// Loads a PRM from a model directory (config.json, model.safetensors or shards,
  /// tokenizer.json) or a TorchScript file. IoError naming the path when it does not
  /// exist or holds no model; ParseError naming the file and field for a malformed model
  /// or tokenizer (or a token-class head with other than 1 or 2 labels); InvalidArgument
  /// naming the PrmParams field for bad parameters, a kind that does not match the model,
  /// or a tag / good / bad token that is not exactly one token; Error when CUDA is asked
  /// for but absent or the TorchScript module cannot be loaded.
  static PrmVerifier load(const std::string& path, PrmParams params = {});

  PrmVerifier(const PrmVerifier&) = default;
  PrmVerifier(PrmVerifier&&) noexcept = default;
  PrmVerifier& operator=(const PrmVerifier&) = default;
  PrmVerifier& operator=(PrmVerifier&&) noexcept = default;
  ~PrmVerifier();

  /// StepVerifier: for each request, the scores in [0,1] of steps [first_new, size) of its
  /// trajectory. InvalidArgument naming the request for first_new outside [0, size];
  /// PluginError naming the module for a misbehaving TorchScript module.
  std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> batch);
  /// OutcomeVerifier: every step scored, aggregated by PrmParams::outcome_aggregation.
  std::vector<double> score_outcomes(std::span<const OutcomeRequest> batch);

  /// "prm:<basename of the model directory or TorchScript file>".
  std::string name() const;
  /// PrmParams::max_batch (0 = unlimited).
  std::size_t max_batch_size() const;
  /// The resolved kind: "token-logit", "token-class" or "torchscript".
  std::string kind() const;
  /// The parameters in force (step_tag resolved to the kind's default when it was empty).
  const PrmParams& params() const;
  /// The token a step is read at (the last of its tag's tokens; -1 for the outcome kinds),
  /// good and bad token ids (good/bad are -1 unless token-logit / chat-logit).
  std::int32_t step_tag_id() const;
  /// The tokens appended after every step (one for every kind but chat-logit; none for the
  /// outcome kinds), and those between a step's tag and the next step's text.
  const std::vector<std::int32_t>& step_tag_tokens() const;
  std::vector<std::int32_t> step_separator_tokens() const;
  /// True for the outcome kinds (reward-model, seq-class): score_steps throws
  /// InvalidArgument, score_outcomes reads each whole response at its last token.
  bool outcome_only() const;
  std::int32_t good_token_id() const;
  std::int32_t bad_token_id() const;

  /// The scored sequence of `prompt` + `trajectory` (the layout in the header comment; a
  /// layout that reads the problem's text needs the overload below).
  PrmSequence sequence(std::string_view prompt, const TrajectoryView& trajectory) const;
  /// The sequence a request is scored on, every step's read position in step_ends (an
  /// outcome kind: the whole response, step_ends = {its last token}).
  PrmSequence sequence(const StepScoreRequest& request) const;

  PrmStats stats() const;
  void reset_stats();
  /// Drops every cached prefix (not counted as evictions).
  void clear_cache();

  struct Impl;

 private:
  explicit PrmVerifier(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

static_assert(StepVerifier<PrmVerifier>);
static_assert(OutcomeVerifier<PrmVerifier>);

}  // namespace qstar::lm
