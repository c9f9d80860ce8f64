// Shared by test_prm_heads.cpp and test_prm_layouts.cpp: tiny random-weight folders of the
// verifier-head architectures (the real models' config fields and tensor names), a character
// tokenizer with the real models' special tokens, and the Python references
// (reference_llama.py for the heads, reference_prm_format.py for the formats).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "qstar/core/concepts.hpp"
#include "qstar/core/json.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/error.hpp"
#include "support/tiny_model.hpp"

#ifndef QSTAR_PYTHON
#define QSTAR_PYTHON "/usr/bin/python3"
#endif
#ifndef QSTAR_TEST_SCRIPTS
#define QSTAR_TEST_SCRIPTS "tests/torch"
#endif

namespace heads_test {

namespace fs = std::filesystem;
using namespace tiny;

/// The special tokens the real verifiers' formats use, added after the character vocabulary
/// (ids 49 ..; " ки" is 49).
inline const std::vector<std::string> kSpecials = {"<extra_0>",         "<|im_start|>",        "<|im_end|>",
                                                   "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                                                   "<|eot_id|>",        "<|endoftext|>"};

/// tiny::write_tokenizer's character vocabulary plus " ки" and kSpecials as special added
/// tokens (one token each).
inline void write_special_tokenizer(const std::string& path, bool with_extra0 = true) {
  std::ostringstream v;
  v << "{\"<unk>\": 0";
  int id = 1;
  for (const char* c = kChars; *c; ++c) v << ", \"" << json_escape(std::string(1, *c)) << "\": " << id++;
  v << "}";
  std::ostringstream t;
  t << "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": " << id++
    << ", \"content\": \" ки\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
       "\"normalized\": false, \"special\": false}";
  for (const auto& s : kSpecials) {
    const int this_id = id++;
    if (s == "<extra_0>" && !with_extra0) continue;
    t << ", {\"id\": " << this_id << ", \"content\": \"" << json_escape(s)
      << "\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, "
         "\"special\": true}";
  }
  t << "], \"normalizer\": null,"
       " \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"[\\\\s\\\\S]\"}, "
       "\"behavior\": \"Isolated\", \"invert\": false},"
       " \"post_processor\": null, \"decoder\": {\"type\": \"Fuse\"},"
       " \"model\": {\"type\": \"WordLevel\", \"vocab\": "
    << v.str() << ", \"unk_token\": \"<unk>\"}}";
  std::ofstream(path) << t.str();
}

/// A ChatML template as Qwen2.5's renders a conversation that has a system message.
inline const char* const kChatML =
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + "
    "'<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}";
/// Meta-Llama-3-Instruct's template (content trimmed, BOS before the first message).
inline const char* const kLlama3 =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}";

/// tokenizer_config.json with `tmpl` and a BOS.
inline void write_tokenizer_config(const std::string& dir, const std::string& tmpl, const std::string& bos) {
  qstar::json::Value cfg = qstar::json::Value::object();
  cfg.set("chat_template", tmpl);
  cfg.set("bos_token", bos);
  cfg.set("eos_token", "<|endoftext|>");
  std::ofstream(dir + "/tokenizer_config.json") << qstar::json::dump(cfg);
}

/// The verifier heads' architectures.
enum class HeadArch { ProcessReward, Reward, Value, SeqClass1, SeqClass2 };

/// A tiny folder of `arch`: the decoder (vocab 64: the special tokenizer fits), the head's
/// tensors under the real names, and config.json as the real models write it
/// (Qwen2ForProcessRewardModel without num_labels; a sequence classifier with id2label).
inline void write_head_model(const std::string& dir, HeadArch arch, unsigned seed) {
  Layout l;
  l.qkv_bias = arch != HeadArch::SeqClass1;  // SeqClass1 is a Llama, the rest Qwen2
  l.write_head = arch == HeadArch::Value;    // Skywork's checkpoint keeps the LM head
  auto ts = tensor_layout(l);
  const std::int64_t D = l.hidden;
  std::string a, mt = "qwen2", extra;
  switch (arch) {
    case HeadArch::ProcessReward:
    case HeadArch::Reward: {
      const std::int64_t n = arch == HeadArch::Reward ? 1 : 2;
      ts.push_back({"score.0.weight", {D, D}, 'w'});
      ts.push_back({"score.0.bias", {D}, 'b'});
      ts.push_back({"score.2.weight", {n, D}, 's'});
      ts.push_back({"score.2.bias", {n}, 'b'});
      a = arch == HeadArch::Reward ? "Qwen2ForRewardModel" : "Qwen2ForProcessRewardModel";
      break;
    }
    case HeadArch::Value:
      ts.push_back({"v_head.summary.weight", {1, D}, 's'});
      ts.push_back({"v_head.summary.bias", {1}, 'b'});
      a = "Qwen2ForPrmModel";
      extra = ", \"bos_token_id\": 57";  // <|endoftext|>
      break;
    case HeadArch::SeqClass1:
      ts.push_back({"score.weight", {1, D}, 's'});
      a = "LlamaForSequenceClassification";
      mt = "llama";
      extra = ", \"id2label\": {\"0\": \"LABEL_0\"}, \"pad_token_id\": 0";
      break;
    case HeadArch::SeqClass2:
      ts.push_back({"score.weight", {2, D}, 's'});
      a = "Qwen2ForSequenceClassification";
      extra = ", \"id2label\": {\"0\": \"LABEL_0\", \"1\": \"LABEL_1\"}";
      break;
  }
  write_weights(dir + "/model.safetensors", ts, seed, tiny::standard_fill(2.0f));
  std::ofstream(dir + "/config.json") << "{" << config_fields(a, mt, l, 10000.0, 512) << extra << "}\n";
  write_special_tokenizer(dir + "/tokenizer.json");
}

/// A python3 that runs `script args...` (CMake's, else Debian's), its stderr in `err`; ""
/// when none has the script's imports (the caller skips), FAIL when one has them and fails.
inline std::string run_python(const std::string& script, const std::string& args, const std::string& err,
                              const std::string& imports, std::string& failure) {
  for (const std::string& c : {std::string(QSTAR_PYTHON), std::string("/usr/bin/python3")}) {
    if (c.empty() || !fs::exists(c)) continue;
    const std::string cmd = "\"" + c + "\" \"" + std::string(QSTAR_TEST_SCRIPTS) + "/" + script + "\" " + args +
                            " 2> \"" + err + "\"";
    if (std::system(cmd.c_str()) == 0) return c;
    const std::string probe = "\"" + c + "\" -c \"import " + imports + "\" > /dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) {
      std::ifstream e(err);
      std::stringstream ss;
      ss << e.rdbuf();
      failure = c + ": " + ss.str();
      return "";
    }
  }
  return "";
}

inline qstar::Step step(const std::string& text) {
  qstar::Step s;
  s.text = text;
  return s;
}

/// A small search tree over one problem (texts in the character vocabulary):
///   root ─ a "3+4=7" ─ a1 "7*2=14" ─ a1x "ans 14"
///        │          └ a2 "7-1=6"
///        └ b "3*4=12" ─ b1 "12+2=14"
struct Tree {
  qstar::Tree tree;
  qstar::NodeId a, a1, a1x, a2, b, b1;
  qstar::Problem problem{"p0", "make 14 from 3 4 2", std::nullopt};
  std::string prompt = "q: make 14";
  Tree() {
    a = tree.add_child(qstar::Tree::root(), step("3+4=7"));
    b = tree.add_child(qstar::Tree::root(), step("3*4=12"));
    a1 = tree.add_child(a, step("7*2=14"));
    a2 = tree.add_child(a, step("7-1=6"));
    b1 = tree.add_child(b, step("12+2=14"));
    a1x = tree.add_child(a1, step("ans 14"));
  }
  qstar::StepScoreRequest req(qstar::NodeId leaf, std::int32_t first_new) const {
    qstar::StepScoreRequest r;
    r.problem = &problem;
    r.prompt = prompt;
    r.trajectory = tree.trajectory(leaf);
    r.first_new = first_new;
    return r;
  }
  qstar::OutcomeRequest outcome(qstar::NodeId leaf) const {
    qstar::OutcomeRequest r;
    r.problem = &problem;
    r.prompt = prompt;
    r.trajectory = tree.trajectory(leaf);
    return r;
  }
  std::vector<qstar::NodeId> leaves() const { return {a1x, a2, b1}; }
  std::vector<std::string> texts(qstar::NodeId leaf) const {
    std::vector<std::string> out;
    const auto tv = tree.trajectory(leaf);
    for (std::size_t i = 0; i < tv.size(); ++i) out.emplace_back(tv.text(i));
    return out;
  }
};

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const qstar::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("NOT A qstar::Error: ") + e.what();
  }
  return "NO ERROR";
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace heads_test
