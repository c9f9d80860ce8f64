// A tiny driver for tests/python/test_tokenizer_spm_parity.py: loads each tokenizer named on
// the command line with Tokenizer::from_path (a model folder, a tokenizer.model or a
// tokenizer.json), prints one JSON line per tokenizer
//   {"kind": "...", "vocab_size": N, "bos": id|null, "eos": id|null, "special": [ids]}
// or {"error": "...", "message": "..."}, then reads JSON lines from stdin and writes one
// line per input, in order:
//   {"tok": k, "encode": "text", "special": bool}  ->  {"ids": [...]}
//   {"tok": k, "decode": [ids], "skip": bool}      ->  {"hex": "<the bytes, hex>"}
//   {"tok": k, "token_bytes": id}                  ->  {"hex": "..."}
//   {"tok": k, "pre_tokenize": "text"}             ->  {"pieces": [...]}
// (any qstar::Error: {"error": "<class>", "message": "..."}).
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/tokenizer.hpp"

namespace json = qstar::json;
using qstar::hf::Tokenizer;

namespace {

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (const char c : s) {
    out.push_back(d[(static_cast<unsigned char>(c) >> 4) & 15]);
    out.push_back(d[static_cast<unsigned char>(c) & 15]);
  }
  return out;
}

json::Value id_or_null(const std::optional<std::int32_t>& id) {
  return id ? json::Value(static_cast<std::int64_t>(*id)) : json::Value();
}

json::Value ids_value(const std::vector<std::int32_t>& ids) {
  json::Value a = json::Value::array();
  for (const auto id : ids) a.as_array().emplace_back(static_cast<std::int64_t>(id));
  return a;
}

void put_error(json::Value& out, const char* cls, const std::exception& e) {
  out.as_object().emplace_back("error", cls);
  out.as_object().emplace_back("message", e.what());
}

json::Value run(const std::vector<std::optional<Tokenizer>>& toks, const json::Value& in) {
  json::Value out = json::Value::object();
  const auto k = static_cast<std::size_t>(in.get_int("tok"));
  if (k >= toks.size() || !toks[k]) throw qstar::InvalidArgument("tok: no such tokenizer");
  const Tokenizer& t = *toks[k];
  if (const auto* e = in.find("encode")) {
    const auto* sp = in.find("special");
    out.as_object().emplace_back("ids", ids_value(t.encode(e->as_string(), sp && sp->as_bool())));
  } else if (const auto* d = in.find("decode")) {
    std::vector<std::int32_t> ids;
    for (const auto& v : d->as_array()) ids.push_back(static_cast<std::int32_t>(v.as_int()));
    const auto* skip = in.find("skip");
    out.as_object().emplace_back("hex", hex(t.decode(ids, skip && skip->as_bool())));
  } else if (const auto* b = in.find("token_bytes")) {
    out.as_object().emplace_back("hex", hex(t.token_bytes(static_cast<std::int32_t>(b->as_int()))));
  } else {
    json::Value a = json::Value::array();
    for (auto& p : t.pre_tokenize(in.get_string("pre_tokenize"))) a.as_array().emplace_back(std::move(p));
    out.as_object().emplace_back("pieces", std::move(a));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::optional<Tokenizer>> toks;
  for (int i = 1; i < argc; ++i) {
    toks.emplace_back();
    json::Value info = json::Value::object();
    try {
      Tokenizer t = Tokenizer::from_path(argv[i]);
      info.as_object().emplace_back("kind", t.kind());
      info.as_object().emplace_back("vocab_size", static_cast<std::int64_t>(t.vocab_size()));
      info.as_object().emplace_back("bos", id_or_null(t.bos_id()));
      info.as_object().emplace_back("eos", id_or_null(t.eos_id()));
      info.as_object().emplace_back("special", ids_value(t.special_ids()));
      toks.back() = std::move(t);
    } catch (const qstar::ParseError& e) {
      put_error(info, "ParseError", e);
    } catch (const qstar::IoError& e) {
      put_error(info, "IoError", e);
    } catch (const qstar::Error& e) {
      put_error(info, "Error", e);
    }
    std::cout << json::dump(info) << '\n' << std::flush;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    json::Value out = json::Value::object();
    try {
      out = run(toks, json::parse(line, "stdin"));
    } catch (const qstar::Error& e) {
      out = json::Value::object();
      put_error(out, "Error", e);
    }
    std::cout << json::dump(out) << '\n' << std::flush;
  }
  return 0;
}
